// Max / average pooling, forward and backward, as direct OpenMP loops rather than oneDNN pooling
// primitives: the Backend contract wants max pooling's argmax as a flat NCHW input index (oneDNN's
// workspace is an opaque per-window offset in its own layout), and pooling is memory-bound, so a
// plain-layout loop beats reorder + primitive + reorder. Semantics and arithmetic are those of
// backends/ref/pool2d.ts, bit for bit:
//  - max: padding is −inf (never chosen); the first max wins on ties; a NaN is chosen only as a
//    window's first cell (the reference's `v > best || at < 0`).
//  - avg: count_include_pad = false; sums in float64 in window order, divided in float64.
//  - avg backward adds dy/count (float64) into dx in output order, rounding to float32 at each add,
//    like `dx[i] += d` on a Float32Array.
// Work is split over the N·C planes (windows never cross planes, so the order of adds into each dx
// element is the reference's).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <limits>

#include "dnnl/dnnl_common.h"

namespace onebit {

namespace {
constexpr int64_t kParallelMin = 1 << 16;  // output·window cells below which one thread is used

int64_t WorkOf(const PoolGeom& g) { return g.N * g.C * g.Ho() * g.Wo() * g.kh * g.kw; }
}  // namespace

std::string MaxPool2d(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  const int64_t planes = g.N * g.C, H = g.H, W = g.W, Ho = g.Ho(), Wo = g.Wo();
#pragma omp parallel for schedule(static) if (WorkOf(g) >= kParallelMin)
  for (int64_t pl = 0; pl < planes; pl++) {
    const int64_t base = pl * H * W;
    int64_t o = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      const int64_t hs = oh * g.sh - g.ph;
      const int64_t h0 = std::max<int64_t>(0, hs), h1 = std::min(H, hs + g.kh);
      for (int64_t ow = 0; ow < Wo; ow++, o++) {
        const int64_t ws = ow * g.sw - g.pw;
        const int64_t w0 = std::max<int64_t>(0, ws), w1 = std::min(W, ws + g.kw);
        float best = -std::numeric_limits<float>::infinity();
        int64_t at = -1;
        for (int64_t h = h0; h < h1; h++) {
          const int64_t row = base + h * W;
          for (int64_t w = w0; w < w1; w++) {
            const float v = x[row + w];
            if (v > best || at < 0) {
              best = v;
              at = row + w;
            }
          }
        }
        y[o] = best;
        argmax[o] = static_cast<int32_t>(at);
      }
    }
  }
  return "";
}

// Sequential scatter in output order: argmax carries no plane structure here, and overlapping
// windows may share an input cell. Indices outside [0, xSize) are ignored, as a Float32Array
// ignores out-of-range writes in the reference.
std::string MaxPool2dBackward(const float* dy, const int32_t* argmax, int64_t n, float* dx, int64_t xSize) {
  for (int64_t i = 0; i < n; i++) {
    const int64_t a = argmax[i];
    if (a >= 0 && a < xSize) dx[a] += dy[i];
  }
  return "";
}

namespace {

// One plane of the 2x2 / stride 2 / no padding average (ResNet shortcuts) with AVX2: four outputs
// per step, the reference's arithmetic exactly: s = ((((+0 + a) + b) + c) + d) in float64 (a, b
// from the top row, c, d from the bottom one, left to right), then s / 4 (computed as s · 0.25:
// the same correctly rounded quotient) rounded to float32.
__attribute__((target("avx2"))) void AvgPool2x2PlaneAvx2(const float* x, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                                         float* y) {
  (void)H;
  const __m256i evenOdd = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256d quarter = _mm256_set1_pd(0.25), zero = _mm256_setzero_pd();
  for (int64_t oh = 0; oh < Ho; oh++) {
    const float* r0 = x + 2 * oh * W;
    const float* r1 = r0 + W;
    float* yo = y + oh * Wo;
    int64_t ow = 0;
    for (; ow + 4 <= Wo; ow += 4) {
      const __m256 t = _mm256_permutevar8x32_ps(_mm256_loadu_ps(r0 + 2 * ow), evenOdd);
      const __m256 b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(r1 + 2 * ow), evenOdd);
      __m256d s = _mm256_add_pd(zero, _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
      s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
      s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
      s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
      _mm_storeu_ps(yo + ow, _mm256_cvtpd_ps(_mm256_mul_pd(s, quarter)));
    }
    for (; ow < Wo; ow++) {
      double s = 0;
      s += r0[2 * ow];
      s += r0[2 * ow + 1];
      s += r1[2 * ow];
      s += r1[2 * ow + 1];
      yo[ow] = static_cast<float>(s / 4.0);
    }
  }
}

}  // namespace

std::string AvgPool2d(const PoolGeom& g, const float* x, float* y) {
  const int64_t planes = g.N * g.C, H = g.H, W = g.W, Ho = g.Ho(), Wo = g.Wo();
  if (g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && __builtin_cpu_supports("avx2")) {
    // Every window is whole (no padding, floor): count 4. ~0.25 ns per input value on one core
    // (the float64 conversions): threads from 64 Ki inputs (a 64x32x32 map, 2 threads: 15-20 -> 10-12 us).
#pragma omp parallel for schedule(static) if (planes * H * W >= (int64_t{1} << 16))
    for (int64_t pl = 0; pl < planes; pl++) AvgPool2x2PlaneAvx2(x + pl * H * W, H, W, Ho, Wo, y + pl * Ho * Wo);
    return "";
  }
#pragma omp parallel for schedule(static) if (WorkOf(g) >= kParallelMin)
  for (int64_t pl = 0; pl < planes; pl++) {
    const int64_t base = pl * H * W;
    int64_t o = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      const int64_t hs = oh * g.sh - g.ph;
      const int64_t h0 = std::max<int64_t>(0, hs), h1 = std::min(H, hs + g.kh);
      for (int64_t ow = 0; ow < Wo; ow++, o++) {
        const int64_t ws = ow * g.sw - g.pw;
        const int64_t w0 = std::max<int64_t>(0, ws), w1 = std::min(W, ws + g.kw);
        double s = 0;
        for (int64_t h = h0; h < h1; h++) {
          const int64_t row = base + h * W;
          for (int64_t w = w0; w < w1; w++) s += x[row + w];
        }
        y[o] = static_cast<float>(s / static_cast<double>((h1 - h0) * (w1 - w0)));
      }
    }
  }
  return "";
}

std::string AvgPool2dBackward(const PoolGeom& g, const float* dy, float* dx) {
  const int64_t planes = g.N * g.C, H = g.H, W = g.W, Ho = g.Ho(), Wo = g.Wo();
#pragma omp parallel for schedule(static) if (WorkOf(g) >= kParallelMin)
  for (int64_t pl = 0; pl < planes; pl++) {
    const int64_t base = pl * H * W;
    int64_t o = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      const int64_t hs = oh * g.sh - g.ph;
      const int64_t h0 = std::max<int64_t>(0, hs), h1 = std::min(H, hs + g.kh);
      for (int64_t ow = 0; ow < Wo; ow++, o++) {
        const int64_t ws = ow * g.sw - g.pw;
        const int64_t w0 = std::max<int64_t>(0, ws), w1 = std::min(W, ws + g.kw);
        const double d = dy[o] / static_cast<double>((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; h++) {
          float* row = dx + base + h * W;
          for (int64_t w = w0; w < w1; w++) row[w] = static_cast<float>(row[w] + d);
        }
      }
    }
  }
  return "";
}

}  // namespace onebit
