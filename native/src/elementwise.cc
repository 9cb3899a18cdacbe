// Element-wise, broadcast, reduction and batch-norm kernels. The formulas
// follow TensorFlow.js' cpu backend so that results agree to float rounding.
#include <dlfcn.h>
#include <emmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace facegan {

namespace {

// Below this many elements per thread, waking another thread costs more than it saves.
constexpr size_t kGrain = size_t(1) << 14;
size_t GrainRows(size_t rowLength) { return kGrain / std::max<size_t>(1, rowLength); }

template <typename F>
void Map(const float* x, float* y, size_t n, F f) {
  ParallelFor(n, kGrain, [&](size_t begin, size_t end, int) {
    // Local pointers and a local copy of f: the loop then vectorises (with
    // -fno-trapping-math for the selects), about 40x faster than the scalar,
    // branching loop GCC makes of captured references.
    const float* xs = x + begin;
    float* ys = y + begin;
    const F g = f;
    const size_t m = end - begin;
    for (size_t i = 0; i < m; ++i) ys[i] = g(xs[i]);
  });
}

// Innermost loop of a broadcast op; the stride-1 and stride-0 cases are
// written out so that the compiler vectorises them.
template <typename T, typename F>
void Row(const float* a, int64_t as, const float* b, int64_t bs, T* out, int64_t n, const F& fRef) {
  const F f = fRef;  // a local copy, so that nothing the loop stores can change it: the loops vectorise
  if (as == 1 && bs == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (as == 1 && bs == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], bv);
  } else if (as == 0 && bs == 1) {
    const float av = *a;
    for (int64_t i = 0; i < n; ++i) out[i] = f(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i * as], b[i * bs]);
  }
}

template <typename T, typename F>
void Broadcast(const float* a, const int64_t* as, const float* b, const int64_t* bs, T* out, const int64_t* shape,
               F f) {
  const int64_t rows = shape[0] * shape[1] * shape[2], len = shape[3];
  if (rows == 1) {
    // One long row: split the row itself.
    ParallelFor(size_t(len), kGrain, [&](size_t begin, size_t end, int) {
      Row(a + int64_t(begin) * as[3], as[3], b + int64_t(begin) * bs[3], bs[3], out + begin, int64_t(end - begin), f);
    });
    return;
  }
  ParallelFor(size_t(rows), std::max<size_t>(1, kGrain / size_t(len)), [&](size_t begin, size_t end, int) {
    for (int64_t r = int64_t(begin); r < int64_t(end); ++r) {
      const int64_t i2 = r % shape[2], i1 = (r / shape[2]) % shape[1], i0 = r / (shape[2] * shape[1]);
      const float* pa = a + i0 * as[0] + i1 * as[1] + i2 * as[2];
      const float* pb = b + i0 * bs[0] + i1 * bs[1] + i2 * bs[2];
      Row(pa, as[3], pb, bs[3], out + r * len, len, f);
    }
  });
}

// glibc's vector tanhf (libmvec, glibc 2.35+: 4 floats per call, at most 2 ulp off; glibc
// picks the SSE4/AVX2/AVX-512 code for the CPU). Looked up at run time so that the addon
// neither links nor needs libmvec; without it tanh stays on the scalar std::tanh, ~5x slower.
using VectorTanh = __m128 (*)(__m128);
VectorTanh LoadVectorTanh() {
  void* lib = dlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
  return lib ? reinterpret_cast<VectorTanh>(dlsym(lib, "_ZGVbN4v_tanhf")) : nullptr;
}

void Tanh(const float* x, float* y, size_t n) {
  static const VectorTanh vectorTanh = LoadVectorTanh();
  ParallelFor(n, kGrain, [&](size_t begin, size_t end, int) {
    size_t i = begin;
    if (vectorTanh) {
      for (; i + 4 <= end; i += 4) _mm_storeu_ps(y + i, vectorTanh(_mm_loadu_ps(x + i)));
    }
    for (; i < end; ++i) y[i] = std::tanh(x[i]);
  });
}

float Sigmoid(float v) {
  // cpu backend's formula: 1 / (1 + exp(-x)).
  return 1.0f / (1.0f + std::exp(-v));
}

}  // namespace

void Unary(UnaryOp op, const float* x, float* y, size_t n, float alpha) {
  switch (op) {
    case UnaryOp::kRelu: return Map(x, y, n, [](float v) { return v < 0.0f ? 0.0f : v; });
    case UnaryOp::kLeakyRelu: return Map(x, y, n, [alpha](float v) { return v < 0.0f ? alpha * v : v; });
    case UnaryOp::kTanh: return Tanh(x, y, n);
    case UnaryOp::kSigmoid: return Map(x, y, n, Sigmoid);
    case UnaryOp::kNeg: return Map(x, y, n, [](float v) { return -v; });
    case UnaryOp::kSquare: return Map(x, y, n, [](float v) { return v * v; });
    case UnaryOp::kSqrt: return Map(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::kRsqrt: return Map(x, y, n, [](float v) { return 1.0f / std::sqrt(v); });
    case UnaryOp::kAbs: return Map(x, y, n, [](float v) { return std::fabs(v); });
    case UnaryOp::kExp: return Map(x, y, n, [](float v) { return std::exp(v); });
    case UnaryOp::kLog1p: return Map(x, y, n, [](float v) { return std::log1p(v); });
    case UnaryOp::kStep:
      return Map(x, y, n, [alpha](float v) { return std::isnan(v) ? NAN : (v > 0.0f ? 1.0f : alpha); });
    case UnaryOp::kLog: return Map(x, y, n, [](float v) { return std::log(v); });
    case UnaryOp::kReciprocal: return Map(x, y, n, [](float v) { return 1.0f / v; });
    case UnaryOp::kRelu6: return Map(x, y, n, [](float v) { return std::min(std::max(v, 0.0f), 6.0f); });
    case UnaryOp::kElu: return Map(x, y, n, [](float v) { return v >= 0.0f ? v : std::exp(v) - 1.0f; });
    case UnaryOp::kCount: return;
  }
}

void Binary(BinaryOp op, const float* a, const int64_t* as, const float* b, const int64_t* bs, float* out,
            const int64_t* shape) {
  switch (op) {
    case BinaryOp::kAdd: return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return x + y; });
    case BinaryOp::kSub: return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return x - y; });
    case BinaryOp::kMul: return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return x * y; });
    case BinaryOp::kDiv: return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return x / y; });
    case BinaryOp::kSquaredDifference:
      return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return (x - y) * (x - y); });
    case BinaryOp::kMaximum:
      return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return std::isnan(x) || x > y ? x : y; });
    case BinaryOp::kMinimum:
      return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return std::isnan(x) || x < y ? x : y; });
    case BinaryOp::kCount: return;
  }
}

void Compare(CompareOp op, const float* a, const int64_t* as, const float* b, const int64_t* bs, uint8_t* out,
             const int64_t* shape) {
  switch (op) {
    case CompareOp::kGreater: return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return uint8_t(x > y); });
    case CompareOp::kGreaterEqual:
      return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return uint8_t(x >= y); });
    case CompareOp::kLess: return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return uint8_t(x < y); });
    case CompareOp::kLessEqual:
      return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return uint8_t(x <= y); });
    case CompareOp::kEqual: return Broadcast(a, as, b, bs, out, shape, [](float x, float y) { return uint8_t(x == y); });
    case CompareOp::kCount: return;
  }
}

void ReduceSum(const float* x, size_t outer, size_t mid, size_t inner, float scale, float* out) {
  const int threads = ThreadCount();
  if (outer >= size_t(threads) && outer * mid * inner >= kGrain) {
    // Independent outputs: each thread sums whole [mid, inner] blocks.
    ParallelFor(outer, 1, [&](size_t o0, size_t o1, int) {
      std::vector<double> acc(inner);
      for (size_t o = o0; o < o1; ++o) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const float* block = x + o * mid * inner;
        for (size_t m = 0; m < mid; ++m) {
          const float* row = block + m * inner;
          for (size_t i = 0; i < inner; ++i) acc[i] += row[i];
        }
        for (size_t i = 0; i < inner; ++i) out[o * inner + i] = float(acc[i] * scale);
      }
    });
    return;
  }
  // Few outputs (batch-norm statistics, a loss): threads split the summed axis, then partial sums are added.
  std::vector<std::vector<double>> partial(size_t(threads), std::vector<double>(outer * inner, 0.0));
  ParallelFor(mid, std::max<size_t>(1, kGrain / std::max<size_t>(1, outer * inner)), [&](size_t m0, size_t m1, int t) {
    double* acc = partial[size_t(t)].data();
    for (size_t o = 0; o < outer; ++o) {
      for (size_t m = m0; m < m1; ++m) {
        const float* row = x + (o * mid + m) * inner;
        double* a = acc + o * inner;
        for (size_t i = 0; i < inner; ++i) a[i] += row[i];
      }
    }
  });
  for (size_t j = 0; j < outer * inner; ++j) {
    double s = 0.0;
    for (const auto& p : partial) s += p[j];
    out[j] = float(s * scale);
  }
}

void Select(const uint8_t* cond, const float* a, const float* b, float* out, size_t n) {
  ParallelFor(n, kGrain, [&](size_t begin, size_t end, int) {
    const uint8_t* c = cond;
    const float *pa = a, *pb = b;
    float* o = out;
    for (size_t i = begin; i < end; ++i) o[i] = c[i] ? pa[i] : pb[i];
  });
}

void BatchNorm(const float* x, size_t n, size_t channels, const float* mean, size_t meanLen, const float* variance,
               size_t varLen, const float* scale, size_t scaleLen, const float* offset, size_t offsetLen, float eps,
               float* y) {
  std::vector<float> mul(channels), add(channels), sub(channels);
  for (size_t c = 0; c < channels; ++c) {
    const float s = scale ? scale[c % scaleLen] : 1.0f;
    mul[c] = s / std::sqrt(variance[c % varLen] + eps);
    add[c] = offset ? offset[c % offsetLen] : 0.0f;
    sub[c] = mean[c % meanLen];
  }
  ParallelFor(n / channels, std::max<size_t>(1, kGrain / channels), [&](size_t r0, size_t r1, int) {
    const float *pm = mul.data(), *pa = add.data(), *ps = sub.data();
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * channels;
      float* yr = y + r * channels;
      for (size_t c = 0; c < channels; ++c) yr[c] = pa[c] + (xr[c] - ps[c]) * pm[c];
    }
  });
}

void ActivationGrad(const float* dy, const float* x, float* dx, size_t n, float alpha, bool relu) {
  ParallelFor(n, kGrain, [&](size_t begin, size_t end, int) {
    const float *d = dy + begin, *v = x + begin;
    float* o = dx + begin;
    const size_t m = end - begin;
    const float a = alpha;
    if (relu) {
      // tfjs-core: dy * step(x), and step(NaN) is NaN.
      for (size_t i = 0; i < m; ++i) o[i] = d[i] * (v[i] != v[i] ? v[i] : (v[i] > 0.0f ? 1.0f : 0.0f));
    } else {
      // tfjs-core: where(x > 0, dy, dy * alpha).
      for (size_t i = 0; i < m; ++i) o[i] = v[i] > 0.0f ? d[i] : d[i] * a;
    }
  });
}

void BatchNormGradStats(const float* x, const float* dy, size_t n, size_t channels, const float* mean, size_t meanLen,
                        double* sumDy, double* sumDyXmu) {
  std::vector<float> mu(channels);
  for (size_t c = 0; c < channels; ++c) mu[c] = mean[c % meanLen];
  std::vector<std::vector<double>> partial(size_t(ThreadCount()), std::vector<double>(2 * channels, 0.0));
  ParallelFor(n / channels, std::max<size_t>(1, GrainRows(channels)), [&](size_t r0, size_t r1, int t) {
    double* sd = partial[size_t(t)].data();
    double* sx = sd + channels;
    const float* m = mu.data();
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * channels;
      const float* dr = dy + r * channels;
      for (size_t c = 0; c < channels; ++c) {
        sd[c] += dr[c];
        sx[c] += double(dr[c]) * double(xr[c] - m[c]);
      }
    }
  });
  for (size_t c = 0; c < channels; ++c) {
    double a = 0.0, b = 0.0;
    for (const auto& p : partial) {
      a += p[c];
      b += p[channels + c];
    }
    sumDy[c] = a;
    sumDyXmu[c] = b;
  }
}

namespace {

// Per-channel sums of f(x[r, c], c) over rows, in double, split over threads by rows.
template <typename F>
std::vector<double> ChannelSums(const float* x, size_t n, size_t channels, F f) {
  std::vector<std::vector<double>> partial(size_t(ThreadCount()), std::vector<double>(channels, 0.0));
  ParallelFor(n / channels, std::max<size_t>(1, GrainRows(channels)), [&](size_t r0, size_t r1, int t) {
    double* acc = partial[size_t(t)].data();
    const F g = f;
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * channels;
      for (size_t c = 0; c < channels; ++c) acc[c] += g(xr[c], c);
    }
  });
  std::vector<double> out(channels, 0.0);
  for (const auto& p : partial) {
    for (size_t c = 0; c < channels; ++c) out[c] += p[c];
  }
  return out;
}

}  // namespace

void Moments(const float* x, size_t n, size_t channels, float* mean, float* variance) {
  const double count = double(n / channels);
  const std::vector<double> sum = ChannelSums(x, n, channels, [](float v, size_t) { return double(v); });
  for (size_t c = 0; c < channels; ++c) mean[c] = float(sum[c] / count);
  const float* m = mean;
  const std::vector<double> sq = ChannelSums(x, n, channels, [m](float v, size_t c) {
    const float d = v - m[c];
    return double(d * d);
  });
  for (size_t c = 0; c < channels; ++c) variance[c] = float(sq[c] / count);
}

void BatchNormTrainGrad(const float* x, const float* dy, size_t n, size_t channels, const float* mean,
                        const float* variance, const float* gamma, float eps, float* dx, float* dgamma, float* dbeta) {
  std::vector<double> sumDy(channels), sumDyXmu(channels);
  BatchNormGradStats(x, dy, n, channels, mean, channels, sumDy.data(), sumDyXmu.data());
  const double count = double(n / channels);
  std::vector<float> a(channels), b(channels), k(channels);
  for (size_t c = 0; c < channels; ++c) {
    const double rstd = 1.0 / std::sqrt(double(variance[c]) + double(eps));
    const double ac = double(gamma[c]) * rstd;
    const double bc = -ac * rstd * rstd * sumDyXmu[c] / count;
    a[c] = float(ac);
    b[c] = float(bc);
    k[c] = float(-ac * sumDy[c] / count - bc * double(mean[c]));
    dgamma[c] = float(sumDyXmu[c] * rstd);
    dbeta[c] = float(sumDy[c]);
  }
  ParallelFor(n / channels, std::max<size_t>(1, kGrain / channels), [&](size_t r0, size_t r1, int) {
    const float *pa = a.data(), *pb = b.data(), *pk = k.data();
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * channels;
      const float* dr = dy + r * channels;
      float* out = dx + r * channels;
      for (size_t c = 0; c < channels; ++c) out[c] = pa[c] * dr[c] + pb[c] * xr[c] + pk[c];
    }
  });
}

void AdamStep(const AdamConstants& k, const float* value, const float* m, const float* v, const float* grad,
              float* newValue, float* newM, float* newV, size_t n) {
  ParallelFor(n, kGrain, [&](size_t begin, size_t end, int) {
    const AdamConstants c = k;
    const float *w = value, *m0 = m, *v0 = v, *g = grad;
    float *w1 = newValue, *m1 = newM, *v1 = newV;
    for (size_t i = begin; i < end; ++i) {
      const float mi = m0[i] * c.beta1 + g[i] * c.oneMinusBeta1;
      const float vi = v0[i] * c.beta2 + (g[i] * g[i]) * c.oneMinusBeta2;
      const float step = (mi / c.correction1) / (std::sqrt(vi / c.correction2) + c.epsilon);
      m1[i] = mi;
      v1[i] = vi;
      w1[i] = step * c.negLearningRate + w[i];
    }
  });
}

}  // namespace facegan
