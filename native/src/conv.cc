// NHWC convolutions as im2col / col2im around OpenBLAS' sgemm. Filters use
// TensorFlow's HWIO layout, so a filter is already the [kh*kw*ci, co] matrix
// that multiplies an im2col row: no transposes or copies of the weights.
#include "conv_dnnl.h"
#include "kernels.h"
#include "parallel.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cblas.h>

namespace facegan {

namespace {

// im2col scratch per thread is capped at 1 MiB so that each chunk's columns
// stay in L2 between im2col and sgemm (measured: 10-30% faster on the
// middle layers than batch-sized chunks that stream through memory).
constexpr size_t kScratchFloats = size_t(1) << 18;

std::vector<float>& Scratch(size_t floats) {
  static thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer;
}

// ...but never fewer than this many rows: deep layers (4x4 outputs, K in the
// thousands) need tall sgemms to amortise packing the filter (measured).
constexpr size_t kMinRows = 512;

int RowsPerChunk(const ConvShape& s) {
  const size_t rowsPerImage = size_t(s.outH) * s.outW;
  const size_t k = s.PatchSize();
  size_t images = std::max<size_t>(1, kScratchFloats / (rowsPerImage * k));
  images = std::max(images, (kMinRows + rowsPerImage - 1) / rowsPerImage);
  return int(std::min<size_t>(images, size_t(s.batch)));
}

// Few channels (RGB layers) copy faster inline than through a memcpy call.
inline void CopyPixel(const float* src, float* dst, int channels) {
  if (channels <= 8) {
    for (int c = 0; c < channels; ++c) dst[c] = src[c];
  } else {
    std::memcpy(dst, src, sizeof(float) * channels);
  }
}

// Rows of `cols` for images [n0, n0 + count): one row per output pixel,
// (ky, kx, ci) along the row; taps that fall into the padding are zeros.
// With dilation 1 a kernel row's taps are contiguous in NHWC, so a tap row
// that lies inside the image is one copy of kW * inC floats.
void Im2Col(const ConvShape& s, const float* x, int n0, int count, float* cols) {
  const int k = s.PatchSize();
  const int rowSpan = s.kW * s.inC;
  for (int n = n0; n < n0 + count; ++n) {
    const float* img = x + size_t(n) * s.inH * s.inW * s.inC;
    for (int oy = 0; oy < s.outH; ++oy) {
      for (int ox = 0; ox < s.outW; ++ox) {
        float* row = cols + ((size_t(n - n0) * s.outH + oy) * s.outW + ox) * k;
        const int ix0 = ox * s.strideW - s.padLeft;
        const bool inside = s.dilW == 1 && ix0 >= 0 && ix0 + s.kW <= s.inW;
        for (int ky = 0; ky < s.kH; ++ky) {
          const int iy = oy * s.strideH - s.padTop + ky * s.dilH;
          float* dst = row + ky * rowSpan;
          if (iy < 0 || iy >= s.inH) {
            std::memset(dst, 0, sizeof(float) * rowSpan);
            continue;
          }
          const float* src = img + size_t(iy) * s.inW * s.inC;
          if (inside) {
            std::memcpy(dst, src + size_t(ix0) * s.inC, sizeof(float) * rowSpan);
            continue;
          }
          for (int kx = 0; kx < s.kW; ++kx) {
            const int ix = ix0 + kx * s.dilW;
            if (ix < 0 || ix >= s.inW) {
              std::memset(dst + kx * s.inC, 0, sizeof(float) * s.inC);
            } else {
              CopyPixel(src + size_t(ix) * s.inC, dst + kx * s.inC, s.inC);
            }
          }
        }
      }
    }
  }
}

// The adjoint of Im2Col: every column entry is added back to the input pixel it came from.
void Col2ImAdd(const ConvShape& s, const float* cols, int n0, int count, float* dx) {
  const int k = s.PatchSize();
  const int rowSpan = s.kW * s.inC;
  for (int n = n0; n < n0 + count; ++n) {
    float* img = dx + size_t(n) * s.inH * s.inW * s.inC;
    for (int oy = 0; oy < s.outH; ++oy) {
      for (int ox = 0; ox < s.outW; ++ox) {
        const float* row = cols + ((size_t(n - n0) * s.outH + oy) * s.outW + ox) * k;
        const int ix0 = ox * s.strideW - s.padLeft;
        const bool inside = s.dilW == 1 && ix0 >= 0 && ix0 + s.kW <= s.inW;
        for (int ky = 0; ky < s.kH; ++ky) {
          const int iy = oy * s.strideH - s.padTop + ky * s.dilH;
          if (iy < 0 || iy >= s.inH) continue;
          const float* src = row + ky * rowSpan;
          float* line = img + size_t(iy) * s.inW * s.inC;
          if (inside) {
            float* dst = line + size_t(ix0) * s.inC;
            for (int c = 0; c < rowSpan; ++c) dst[c] += src[c];
            continue;
          }
          for (int kx = 0; kx < s.kW; ++kx) {
            const int ix = ix0 + kx * s.dilW;
            if (ix < 0 || ix >= s.inW) continue;
            float* dst = line + size_t(ix) * s.inC;
            for (int c = 0; c < s.inC; ++c) dst[c] += src[kx * s.inC + c];
          }
        }
      }
    }
  }
}

size_t ImageSize(int h, int w, int c) { return size_t(h) * w * c; }

bool useDnnl = DnnlAvailable() && std::getenv("FACEGAN_NO_ONEDNN") == nullptr;

}  // namespace

bool UseDnnl() { return useDnnl; }
void SetUseDnnl(bool on) { useDnnl = on && DnnlAvailable(); }

// Each thread takes a slice of the batch and runs it in chunks through its
// own im2col buffer and a single-threaded sgemm.
template <typename F>
void ForImageChunks(const ConvShape& s, F body) {
  const int chunk = RowsPerChunk(s);
  ParallelFor(size_t(s.batch), 1, [&](size_t begin, size_t end, int thread) {
    float* cols = Scratch(size_t(chunk) * s.outH * s.outW * s.PatchSize()).data();
    for (int n0 = int(begin); n0 < int(end); n0 += chunk) {
      const int count = std::min(chunk, int(end) - n0);
      body(n0, count, cols, thread);
    }
  });
}

void Conv2D(const ConvShape& s, const float* x, const float* filter, float* y) {
  if (useDnnl && DnnlConv2D(s, x, filter, y)) return;
  const int k = s.PatchSize();
  ForImageChunks(s, [&](int n0, int count, float* cols, int) {
    Im2Col(s, x, n0, count, cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, count * s.outH * s.outW, s.outC, k, 1.0f, cols, k, filter,
                s.outC, 0.0f, y + size_t(n0) * ImageSize(s.outH, s.outW, s.outC), s.outC);
  });
}

void Conv2DBackpropInput(const ConvShape& s, const float* dy, const float* filter, float* dx) {
  if (useDnnl && DnnlConv2DBackpropInput(s, dy, filter, dx)) return;
  const int k = s.PatchSize();
  ForImageChunks(s, [&](int n0, int count, float* cols, int) {
    std::memset(dx + size_t(n0) * ImageSize(s.inH, s.inW, s.inC), 0, sizeof(float) * count * ImageSize(s.inH, s.inW, s.inC));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count * s.outH * s.outW, k, s.outC, 1.0f,
                dy + size_t(n0) * ImageSize(s.outH, s.outW, s.outC), s.outC, filter, s.outC, 0.0f, cols, k);
    Col2ImAdd(s, cols, n0, count, dx);
  });
}

void Conv2DBackpropFilter(const ConvShape& s, const float* x, const float* dy, float* dfilter) {
  if (useDnnl && DnnlConv2DBackpropFilter(s, x, dy, dfilter)) return;
  const int k = s.PatchSize();
  const size_t size = size_t(k) * s.outC;
  // Thread 0 accumulates straight into dfilter, the others into partial sums added at the end.
  std::vector<std::vector<float>> partials(static_cast<size_t>(ThreadCount()));
  std::vector<char> used(partials.size(), 0);  // char, not bool: threads write neighbours
  ForImageChunks(s, [&](int n0, int count, float* cols, int thread) {
    float* out = dfilter;
    if (thread > 0) {
      if (partials[thread].empty()) partials[thread].resize(size);
      out = partials[thread].data();
    }
    const float beta = used[thread] ? 1.0f : 0.0f;
    used[thread] = 1;
    Im2Col(s, x, n0, count, cols);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, s.outC, count * s.outH * s.outW, 1.0f, cols, k,
                dy + size_t(n0) * ImageSize(s.outH, s.outW, s.outC), s.outC, beta, out, s.outC);
  });
  if (!used[0]) std::memset(dfilter, 0, sizeof(float) * size);
  for (size_t t = 1; t < partials.size(); ++t) {
    if (!used[t]) continue;
    const float* p = partials[t].data();
    for (size_t i = 0; i < size; ++i) dfilter[i] += p[i];
  }
}

void MatMul(bool transA, bool transB, int m, int n, int k, const float* a, const float* b, float* c) {
  const int lda = transA ? m : k, ldb = transB ? k : n;
  const auto ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
  // Split the larger side of C between threads; each slab is an ordinary sgemm on offset pointers.
  const size_t grain = size_t(m) * n * k < (size_t(1) << 18) ? SIZE_MAX : 64;  // small products stay inline
  if (n >= m) {
    ParallelFor(size_t(n), grain, [&](size_t j0, size_t j1, int) {
      const float* bj = transB ? b + j0 * k : b + j0;
      cblas_sgemm(CblasRowMajor, ta, tb, m, int(j1 - j0), k, 1.0f, a, lda, bj, ldb, 0.0f, c + j0, n);
    });
  } else {
    ParallelFor(size_t(m), grain, [&](size_t i0, size_t i1, int) {
      const float* ai = transA ? a + i0 : a + i0 * k;
      cblas_sgemm(CblasRowMajor, ta, tb, int(i1 - i0), n, k, 1.0f, ai, lda, b, ldb, 0.0f, c + i0 * n, n);
    });
  }
}

}  // namespace facegan
