// The addon's kernels, free of any Node API so they read as plain numerics.
#pragma once

#include <cstddef>
#include <cstdint>

namespace facegan {

// One NHWC convolution: the forward input x is [batch, inH, inW, inC], the
// output y is [batch, outH, outW, outC], the filter is [kH, kW, inC, outC].
struct ConvShape {
  int batch, inH, inW, inC;
  int outH, outW, outC;
  int kH, kW, strideH, strideW, dilH, dilW, padTop, padLeft;
  int PatchSize() const { return kH * kW * inC; }
};

void Conv2D(const ConvShape& s, const float* x, const float* filter, float* y);
void Conv2DBackpropInput(const ConvShape& s, const float* dy, const float* filter, float* dx);
void Conv2DBackpropFilter(const ConvShape& s, const float* x, const float* dy, float* dfilter);
void MatMul(bool transA, bool transB, int m, int n, int k, const float* a, const float* b, float* c);

enum class UnaryOp : int {
  kRelu = 0, kLeakyRelu, kTanh, kSigmoid, kNeg, kSquare, kSqrt, kRsqrt, kAbs, kExp, kLog1p, kStep, kLog,
  kReciprocal, kRelu6, kElu, kCount
};
void Unary(UnaryOp op, const float* x, float* y, size_t n, float alpha);

enum class BinaryOp : int {
  kAdd = 0, kSub, kMul, kDiv, kSquaredDifference, kMaximum, kMinimum, kCount
};
// Broadcasting over at most four dims: out[i] = op(a[i . aStride], b[i . bStride]);
// a stride of 0 repeats an operand along that dim.
constexpr int kMaxDims = 4;
void Binary(BinaryOp op, const float* a, const int64_t* aStride, const float* b, const int64_t* bStride, float* out,
            const int64_t* shape);

enum class CompareOp : int { kGreater = 0, kGreaterEqual, kLess, kLessEqual, kEqual, kCount };
void Compare(CompareOp op, const float* a, const int64_t* aStride, const float* b, const int64_t* bStride,
             uint8_t* out, const int64_t* shape);

// x viewed as [outer, mid, inner]; out[o, i] = scale * sum over m of x[o, m, i].
void ReduceSum(const float* x, size_t outer, size_t mid, size_t inner, float scale, float* out);

// out = cond ? a : b, all of one shape.
void Select(const uint8_t* cond, const float* a, const float* b, float* out, size_t n);

// y = (x - mean) * rsqrt(variance + eps) * scale + offset per channel (last dim);
// each per-channel operand has length 1 or channels, scale and offset may be null.
void BatchNorm(const float* x, size_t n, size_t channels, const float* mean, size_t meanLen, const float* variance,
               size_t varLen, const float* scale, size_t scaleLen, const float* offset, size_t offsetLen, float eps,
               float* y);

// Gradient of relu (alpha 0) and leaky relu through their input x:
// dx = dy where x > 0, alpha * dy elsewhere; relu's NaN inputs give NaN as in tfjs-core.
void ActivationGrad(const float* dy, const float* x, float* dx, size_t n, float alpha, bool relu);

// Per-channel sums for batch norm's gradient, in one read of x and dy:
// sumDy[c] = sum of dy, sumDyXmu[c] = sum of dy * (x - mean[c]) over all rows.
void BatchNormGradStats(const float* x, const float* dy, size_t n, size_t channels, const float* mean, size_t meanLen,
                        double* sumDy, double* sumDyXmu);

// Per-channel mean and (biased) variance of x [rows, channels], as tf.moments over every axis but the last:
// the mean summed in double and rounded to float, then the variance of x about that float mean.
void Moments(const float* x, size_t n, size_t channels, float* mean, float* variance);

// Batch norm's training-mode gradient in closed form (the batch's own mean and variance), in two passes:
// per-channel sums of dy and dy * (x - mean), then dx = a[c] dy + b[c] x + k[c]. Also writes the gradients
// of gamma (sum dy * xhat) and beta (sum dy), one per channel.
void BatchNormTrainGrad(const float* x, const float* dy, size_t n, size_t channels, const float* mean,
                        const float* variance, const float* gamma, float eps, float* dx, float* dgamma, float* dbeta);

// One Adam step in one pass, in tfjs-core's AdamOptimizer's order of float32 operations (so results are
// the same to the bit): m' = m*b1 + g*(1-b1), v' = v*b2 + g*g*(1-b2), and
// value' = (m'/c1) / (sqrt(v'/c2) + eps) * (-lr) + value, with c1, c2 the bias corrections 1 - b^t.
struct AdamConstants {
  float beta1, beta2, oneMinusBeta1, oneMinusBeta2, correction1, correction2, epsilon, negLearningRate;
};
void AdamStep(const AdamConstants& k, const float* value, const float* m, const float* v, const float* grad,
              float* newValue, float* newM, float* newV, size_t n);

}  // namespace facegan
