{
  "variables": {
    "has_dnnl": "<!(node native/detect_dnnl.cjs)"
  },
  "targets": [
    {
      "target_name": "onebit",
      "sources": [
        "native/addon.cc",
        "native/bitpack/bitpack_ref.cc",
        "native/bitpack/bitpack_select.cc",
        "native/bgemm/bgemm_ref.cc",
        "native/bgemm/bgemm_avx2.cc",
        "native/bgemm/bgemm_avx512.cc",
        "native/bgemm/bgemm_select.cc",
        "native/bconv/bconv.cc",
        "native/binary_bindings.cc",
        "native/eltwise/eltwise.cc",
        "native/eltwise/portable_conv.cc",
        "native/eltwise/reduce.cc",
        "native/eltwise/act_grad.cc",
        "native/eltwise/adabin_act.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fomit-frame-pointer", "-ffp-contract=off"],
      "ldflags": ["-fopenmp"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"] },
      "conditions": [
        ["has_dnnl==1", {
          "defines": ["ONEBIT_HAVE_DNNL=1"],
          "sources": [
            "native/dnnl/dnnl_common.cc",
            "native/dnnl/conv2d.cc",
            "native/dnnl/conv2d_prepared.cc",
            "native/dnnl/conv2d_sign_backward.cc",
            "native/dnnl/matmul.cc",
            "native/dnnl/batch_norm.cc",
            "native/dnnl/pool2d.cc",
            "native/dnnl_bindings.cc"
          ],
          "libraries": ["-ldnnl"]
        }]
      ]
    }
  ]
}
