cmd_Release/obj.target/onebit/native/bconv/bconv.o := g++ -o Release/obj.target/onebit/native/bconv/bconv.o ../native/bconv/bconv.cc '-DNODE_GYP_MODULE_NAME=onebit' '-DUSING_UV_SHARED=1' '-DUSING_V8_SHARED=1' '-DV8_DEPRECATION_WARNINGS=1' '-D_GLIBCXX_USE_CXX11_ABI=1' '-D_FILE_OFFSET_BITS=64' '-D_LARGEFILE_SOURCE' '-D__STDC_FORMAT_MACROS' '-DOPENSSL_NO_PINSHARED' '-DOPENSSL_THREADS' '-DNAPI_VERSION=8' '-DNAPI_DISABLE_CPP_EXCEPTIONS' '-DONEBIT_HAVE_DNNL=1' '-DBUILDING_NODE_EXTENSION' -I/usr/include/node -I/usr/src -I/usr/deps/openssl/config -I/usr/deps/openssl/openssl/include -I/usr/deps/uv/include -I/usr/deps/zlib -I/usr/deps/v8/include -I../node_modules/node-addon-api -I../native  -fPIC -pthread -Wall -Wextra -Wno-unused-parameter -m64 -O3 -fno-omit-frame-pointer -std=gnu++17 -std=c++17 -O3 -fopenmp -fomit-frame-pointer -MMD -MF ./Release/.deps/Release/obj.target/onebit/native/bconv/bconv.o.d.raw   -c
Release/obj.target/onebit/native/bconv/bconv.o: ../native/bconv/bconv.cc \
 ../native/bconv/bconv.h ../native/bgemm/bgemm.h ../native/common.h \
 ../node_modules/node-addon-api/napi.h /usr/include/node/node_api.h \
 /usr/include/node/js_native_api.h \
 /usr/include/node/js_native_api_types.h \
 /usr/include/node/node_api_types.h \
 ../node_modules/node-addon-api/napi-inl.h \
 ../node_modules/node-addon-api/napi.h \
 ../node_modules/node-addon-api/napi-inl.deprecated.h \
 ../native/bitpack/bitpack.h
../native/bconv/bconv.cc:
../native/bconv/bconv.h:
../native/bgemm/bgemm.h:
../native/common.h:
../node_modules/node-addon-api/napi.h:
/usr/include/node/node_api.h:
/usr/include/node/js_native_api.h:
/usr/include/node/js_native_api_types.h:
/usr/include/node/node_api_types.h:
../node_modules/node-addon-api/napi-inl.h:
../node_modules/node-addon-api/napi.h:
../node_modules/node-addon-api/napi-inl.deprecated.h:
../native/bitpack/bitpack.h:
