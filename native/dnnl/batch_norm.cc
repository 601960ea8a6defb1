// Batch norm over x [N, C, S] (channel axis 1), as in backends/ref/batch_norm.ts. Written as plain
// OpenMP loops rather than oneDNN's batch_normalization primitive: the Backend contract splits
// statistics / apply / backward and passes invStd (not variance + eps), which the fused primitive
// does not express without rounding differences, and these kernels are memory-bound anyway.
//
// Numerics follow the reference: statistics in float64, two passes (mean, then centred squares),
// biased variance; apply and backward evaluate the reference's formulas in float64 and round once
// to float32. Work is split over the N·C planes; each plane's partial sums are kept and added per
// channel in plane order, so results do not depend on the thread count.
#include <omp.h>

#include <vector>

#include "dnnl/dnnl_common.h"

namespace onebit {

namespace {

// The per-plane loops are built twice, for AVX2 and for the baseline ISA, and picked at load time
// (GCC function multiversioning): float64 math on 4 lanes instead of 2. -ffp-contract=off keeps
// both clones' results identical (no FMA), so the results do not depend on the CPU.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define ONEBIT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ONEBIT_CLONES
#endif

// Below this many elements the loops stay on one thread (OpenMP dispatch would dominate).
constexpr int64_t kParallelMin = 1 << 16;

// Σ x[i] in float64 with 4 independent accumulators (a single chain runs at one add per latency).
ONEBIT_CLONES double SumD(const float* x, int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += x[i];
    a1 += x[i + 1];
    a2 += x[i + 2];
    a3 += x[i + 3];
  }
  for (; i < n; i++) a0 += x[i];
  return (a0 + a1) + (a2 + a3);
}

// Σ (x[i] − m)² in float64.
ONEBIT_CLONES double SumSqDevD(const float* x, int64_t n, double m) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    double d0 = x[i] - m, d1 = x[i + 1] - m, d2 = x[i + 2] - m, d3 = x[i + 3] - m;
    a0 += d0 * d0;
    a1 += d1 * d1;
    a2 += d2 * d2;
    a3 += d3 * d3;
  }
  for (; i < n; i++) {
    double d = x[i] - m;
    a0 += d * d;
  }
  return (a0 + a1) + (a2 + a3);
}

// Σ dy and Σ dy·(x − mu) in float64.
ONEBIT_CLONES void SumDyD(const float* dy, const float* x, int64_t n, double mu, double& sb, double& sxc) {
  double b0 = 0, b1 = 0, g0 = 0, g1 = 0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    double y0 = dy[i], y1 = dy[i + 1];
    b0 += y0;
    b1 += y1;
    g0 += y0 * (x[i] - mu);
    g1 += y1 * (x[i + 1] - mu);
  }
  for (; i < n; i++) {
    double y0 = dy[i];
    b0 += y0;
    g0 += y0 * (x[i] - mu);
  }
  sb = b0 + b1;
  sxc = g0 + g1;
}

ONEBIT_CLONES void ApplyPlane(const float* xp, float* yp, int64_t S, double scale, double shift) {
  for (int64_t i = 0; i < S; i++) yp[i] = static_cast<float>(xp[i] * scale + shift);
}

// y = fl32(x·scale + shift) + r, the add in float32: apply, then the residual add, with no
// intermediate array (the same bits as batchNormApply followed by an elementwise add).
ONEBIT_CLONES void ApplyPlaneAdd(const float* xp, const float* rp, float* yp, int64_t S, double scale, double shift) {
  for (int64_t i = 0; i < S; i++) yp[i] = static_cast<float>(xp[i] * scale + shift) + rp[i];
}

ONEBIT_CLONES void BackwardPlane(const float* dyp, const float* xp, float* dxp, int64_t S, double mu, double is, double k,
                                 double m, double b, double g) {
  for (int64_t i = 0; i < S; i++) {
    const double xhat = (xp[i] - mu) * is;
    dxp[i] = static_cast<float>(k * (m * dyp[i] - b - xhat * g));
  }
}

}  // namespace

std::string BatchNormStats(const float* x, int64_t N, int64_t C, int64_t S, float* mean, float* variance) {
  const int64_t planes = N * C;
  const bool par = planes * S >= kParallelMin;
  std::vector<double> part(static_cast<size_t>(planes));
  std::vector<double> m(static_cast<size_t>(C));
  const double count = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (par)
  for (int64_t p = 0; p < planes; p++) part[p] = SumD(x + p * S, S);
  for (int64_t c = 0; c < C; c++) {
    double s = 0;
    for (int64_t n = 0; n < N; n++) s += part[n * C + c];
    m[c] = s / count;
    mean[c] = static_cast<float>(m[c]);
  }
#pragma omp parallel for schedule(static) if (par)
  for (int64_t p = 0; p < planes; p++) part[p] = SumSqDevD(x + p * S, S, m[p % C]);
  for (int64_t c = 0; c < C; c++) {
    double q = 0;
    for (int64_t n = 0; n < N; n++) q += part[n * C + c];
    variance[c] = static_cast<float>(q / count);
  }
  return "";
}

std::string BatchNormApply(const float* x, int64_t N, int64_t C, int64_t S, const float* mean, const float* invStd,
                           const float* gamma, const float* beta, const float* residual, float* y) {
  const int64_t planes = N * C;
#pragma omp parallel for schedule(static) if (planes * S >= kParallelMin)
  for (int64_t p = 0; p < planes; p++) {
    const int64_t c = p % C;
    const double scale = static_cast<double>(invStd[c]) * gamma[c];
    const double shift = beta[c] - mean[c] * scale;
    if (residual) ApplyPlaneAdd(x + p * S, residual + p * S, y + p * S, S, scale, shift);
    else ApplyPlane(x + p * S, y + p * S, S, scale, shift);
  }
  return "";
}

std::string BatchNormBackward(const float* dy, const float* x, int64_t N, int64_t C, int64_t S, const float* mean,
                              const float* invStd, const float* gamma, float* dx, float* dgamma, float* dbeta) {
  const int64_t planes = N * C;
  const bool par = planes * S >= kParallelMin;
  std::vector<double> pb(static_cast<size_t>(planes)), pg(static_cast<size_t>(planes));
  std::vector<double> sb(static_cast<size_t>(C)), sg(static_cast<size_t>(C));
  const double m = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (par)
  for (int64_t p = 0; p < planes; p++) SumDyD(dy + p * S, x + p * S, S, mean[p % C], pb[p], pg[p]);
  for (int64_t c = 0; c < C; c++) {
    double b = 0, g = 0;
    for (int64_t n = 0; n < N; n++) {
      b += pb[n * C + c];
      g += pg[n * C + c];
    }
    sb[c] = b;
    sg[c] = g * invStd[c];  // Σ dy·xhat
    dbeta[c] = static_cast<float>(sb[c]);
    dgamma[c] = static_cast<float>(sg[c]);
  }
#pragma omp parallel for schedule(static) if (par)
  for (int64_t p = 0; p < planes; p++) {
    const int64_t c = p % C;
    const double mu = mean[c], is = invStd[c], b = sb[c], g = sg[c];
    const double k = (static_cast<double>(gamma[c]) * is) / m;
    BackwardPlane(dy + p * S, x + p * S, dx + p * S, S, mu, is, k, m, b, g);
  }
  return "";
}

}  // namespace onebit
