// NHWC convolutions as im2col / col2im around OpenBLAS' sgemm. Filters use
// TensorFlow's HWIO layout, so a filter is already the [kh*kw*ci, co] matrix
// that multiplies an im2col row: no transposes or copies of the weights.
#include "kernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <cblas.h>

namespace facegan {

namespace {

// im2col scratch is capped so that big batches run in chunks that stay in
// L3 instead of streaming a batch-sized matrix through memory.
constexpr size_t kScratchFloats = size_t(1) << 22;

std::vector<float>& Scratch(size_t floats) {
  static thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer;
}

int RowsPerChunk(const ConvShape& s) {
  const size_t rowsPerImage = size_t(s.outH) * s.outW;
  const size_t k = s.PatchSize();
  size_t images = std::max<size_t>(1, kScratchFloats / (rowsPerImage * k));
  return int(std::min<size_t>(images, size_t(s.batch)));
}

// Rows of `cols` for images [n0, n0 + count): one row per output pixel,
// (ky, kx, ci) along the row; taps that fall into the padding are zeros.
void Im2Col(const ConvShape& s, const float* x, int n0, int count, float* cols) {
  const int k = s.PatchSize();
  for (int n = n0; n < n0 + count; ++n) {
    const float* img = x + size_t(n) * s.inH * s.inW * s.inC;
    for (int oy = 0; oy < s.outH; ++oy) {
      for (int ox = 0; ox < s.outW; ++ox) {
        float* row = cols + ((size_t(n - n0) * s.outH + oy) * s.outW + ox) * k;
        for (int ky = 0; ky < s.kH; ++ky) {
          const int iy = oy * s.strideH - s.padTop + ky * s.dilH;
          for (int kx = 0; kx < s.kW; ++kx) {
            const int ix = ox * s.strideW - s.padLeft + kx * s.dilW;
            float* dst = row + (ky * s.kW + kx) * s.inC;
            if (iy < 0 || iy >= s.inH || ix < 0 || ix >= s.inW) {
              std::memset(dst, 0, sizeof(float) * s.inC);
            } else {
              std::memcpy(dst, img + (size_t(iy) * s.inW + ix) * s.inC, sizeof(float) * s.inC);
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
  for (int n = n0; n < n0 + count; ++n) {
    float* img = dx + size_t(n) * s.inH * s.inW * s.inC;
    for (int oy = 0; oy < s.outH; ++oy) {
      for (int ox = 0; ox < s.outW; ++ox) {
        const float* row = cols + ((size_t(n - n0) * s.outH + oy) * s.outW + ox) * k;
        for (int ky = 0; ky < s.kH; ++ky) {
          const int iy = oy * s.strideH - s.padTop + ky * s.dilH;
          if (iy < 0 || iy >= s.inH) continue;
          for (int kx = 0; kx < s.kW; ++kx) {
            const int ix = ox * s.strideW - s.padLeft + kx * s.dilW;
            if (ix < 0 || ix >= s.inW) continue;
            const float* src = row + (ky * s.kW + kx) * s.inC;
            float* dst = img + (size_t(iy) * s.inW + ix) * s.inC;
            for (int c = 0; c < s.inC; ++c) dst[c] += src[c];
          }
        }
      }
    }
  }
}

size_t ImageSize(int h, int w, int c) { return size_t(h) * w * c; }

}  // namespace

void Conv2D(const ConvShape& s, const float* x, const float* filter, float* y) {
  const int k = s.PatchSize();
  const int chunk = RowsPerChunk(s);
  float* cols = Scratch(size_t(chunk) * s.outH * s.outW * k).data();
  for (int n0 = 0; n0 < s.batch; n0 += chunk) {
    const int count = std::min(chunk, s.batch - n0);
    const int rows = count * s.outH * s.outW;
    Im2Col(s, x, n0, count, cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, s.outC, k, 1.0f, cols, k, filter,
                s.outC, 0.0f, y + size_t(n0) * ImageSize(s.outH, s.outW, s.outC), s.outC);
  }
}

void Conv2DBackpropInput(const ConvShape& s, const float* dy, const float* filter, float* dx) {
  const int k = s.PatchSize();
  const int chunk = RowsPerChunk(s);
  float* cols = Scratch(size_t(chunk) * s.outH * s.outW * k).data();
  std::memset(dx, 0, sizeof(float) * s.batch * ImageSize(s.inH, s.inW, s.inC));
  for (int n0 = 0; n0 < s.batch; n0 += chunk) {
    const int count = std::min(chunk, s.batch - n0);
    const int rows = count * s.outH * s.outW;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, k, s.outC, 1.0f,
                dy + size_t(n0) * ImageSize(s.outH, s.outW, s.outC), s.outC, filter, s.outC, 0.0f, cols, k);
    Col2ImAdd(s, cols, n0, count, dx);
  }
}

void Conv2DBackpropFilter(const ConvShape& s, const float* x, const float* dy, float* dfilter) {
  const int k = s.PatchSize();
  const int chunk = RowsPerChunk(s);
  float* cols = Scratch(size_t(chunk) * s.outH * s.outW * k).data();
  for (int n0 = 0; n0 < s.batch; n0 += chunk) {
    const int count = std::min(chunk, s.batch - n0);
    const int rows = count * s.outH * s.outW;
    Im2Col(s, x, n0, count, cols);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, s.outC, rows, 1.0f, cols, k,
                dy + size_t(n0) * ImageSize(s.outH, s.outW, s.outC), s.outC, n0 == 0 ? 0.0f : 1.0f, dfilter,
                s.outC);
  }
}

void MatMul(bool transA, bool transB, int m, int n, int k, const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
              a, transA ? m : k, b, transB ? k : n, 0.0f, c, n);
}

}  // namespace facegan
