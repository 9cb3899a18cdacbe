// Convolutions on oneDNN's primitives (AVX-512 kernels where the CPU has
// them), compiled only where native/build.mjs found oneDNN's header and
// library (FACEGAN_DNNL). Activations stay in tfjs' NHWC layout (oneDNN's
// direct convolutions read and write it without reorders); filters come in
// TensorFlow's HWIO and are reordered into the layout the primitive picked
// (format_tag::any). Primitives are cached per shape. Any shape oneDNN
// declines returns false, and the caller runs the OpenBLAS kernels instead.
// With SetDnnlBf16(true) forward and data-gradient convolutions read bf16
// copies of their inputs (see LowPrecision).
#include "conv_dnnl.h"

#ifdef FACEGAN_DNNL

#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>

#include "parallel.h"

extern "C" void omp_set_num_threads(int);

namespace facegan {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& Stream() {
  static dnnl::stream stream(Engine());
  return stream;
}

enum Kind { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

struct Key {
  std::array<int, 16> v;
  bool operator<(const Key& o) const { return v < o.v; }
};

struct Entry {
  memory::desc src, weights, dst;  // user layouts: f32 nhwc, hwio
  memory::desc primWeights;        // the layout (and type) the primitive wants
  dnnl::primitive prim;
  memory primWeightsMem;           // scratch for the reordered filter
  dnnl::reorder toPrim;            // user filter -> primWeights (forward, backward data)
  dnnl::reorder fromPrim;          // primWeights -> user filter (backward weights)
  bool reorderWeights = false;
  // bf16: the activations the primitive reads are converted into these (f32 nhwc -> bf16 nhwc).
  memory srcLow, dstLow;
  dnnl::reorder srcToLow, dstToLow;
};

struct Declined {};  // thrown for a shape oneDNN declined before

std::mutex cacheMutex;
std::map<Key, std::unique_ptr<Entry>> cache;
bool bf16 = false;

memory::dims Strides(const ConvShape& s) { return {s.strideH, s.strideW}; }
memory::dims Dilates(const ConvShape& s) { return {s.dilH - 1, s.dilW - 1}; }
memory::dims PadL(const ConvShape& s) { return {s.padTop, s.padLeft}; }
memory::dims PadR(const ConvShape& s) {
  // Right/bottom padding implied by the output size; oneDNN rounds the output size down, so a
  // 'valid' convolution whose last rows are never read keeps padding 0.
  const int h = (s.outH - 1) * s.strideH + (s.kH - 1) * s.dilH + 1 - s.inH - s.padTop;
  const int w = (s.outW - 1) * s.strideW + (s.kW - 1) * s.dilW + 1 - s.inW - s.padLeft;
  return {h > 0 ? h : 0, w > 0 ? w : 0};
}

dnnl::convolution_forward::primitive_desc ForwardPd(const ConvShape& s, const memory::desc& src,
                                                     const memory::desc& weights, const memory::desc& dst) {
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
                                    weights, dst, Strides(s), Dilates(s), PadL(s), PadR(s));
  return dnnl::convolution_forward::primitive_desc(d, Engine());
}

memory::desc Activations(const ConvShape& s, bool input, dt type) {
  return input ? memory::desc({s.batch, s.inC, s.inH, s.inW}, type, tag::nhwc)
               : memory::desc({s.batch, s.outC, s.outH, s.outW}, type, tag::nhwc);
}

/** A bf16 copy of an f32 operand, and the reorder that fills it. */
void LowCopy(const memory::desc& user, memory* low, dnnl::reorder* toLow) {
  memory::desc d(user.dims(), dt::bf16, tag::nhwc);
  *low = memory(d, Engine());
  *toLow = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), user, Engine(), d));
}

/**
 * In bf16 mode a primitive reads bf16 (activations and filters rounded to
 * bf16, 8-bit mantissa) and accumulates and writes f32, so its outputs and
 * the weights the optimiser updates stay f32: mixed precision's usual split.
 * Where bf16 runs: forward and data-gradient convolutions, 1.3x to 2x faster
 * than f32 at every DCGAN shape on an AVX512_BF16 EPYC. Filter gradients stay
 * f32: oneDNN 2.6's bf16 filter-gradient kernel is at best 1.3x faster, 2x
 * slower at 32 input channels, and when another process takes one of the
 * cores it waits in spin barriers (measured: 100x slower at 64 channels,
 * where the f32 kernel slowed by 1.2x).
 */
bool LowPrecision(Kind kind) { return bf16 && kind != kBackwardWeights; }

Entry* Get(Kind kind, const ConvShape& s) {
  const bool lowIn = LowPrecision(kind);
  const Key key{{int(kind) + (lowIn ? 8 : 0), s.batch, s.inH, s.inW, s.inC, s.outH, s.outW, s.outC, s.kH, s.kW,
                 s.strideH, s.strideW, s.dilH, s.dilW, s.padTop, s.padLeft}};
  std::lock_guard<std::mutex> lock(cacheMutex);
  auto it = cache.find(key);
  if (it != cache.end()) {
    if (!it->second) throw Declined{};
    return it->second.get();
  }
  // A shape oneDNN declines is remembered (a null entry), so that later calls go straight to OpenBLAS.
  cache.emplace(key, nullptr);
  auto e = std::make_unique<Entry>();
  e->src = Activations(s, true, dt::f32);
  e->dst = Activations(s, false, dt::f32);
  e->weights = memory::desc({s.outC, s.inC, s.kH, s.kW}, dt::f32, tag::hwio);
  const dt low = lowIn ? dt::bf16 : dt::f32;
  const memory::desc anyWeights({s.outC, s.inC, s.kH, s.kW}, low, tag::any);
  // What each primitive reads is low precision; what it writes stays f32.
  const memory::desc srcIn = Activations(s, true, low), dstIn = Activations(s, false, low);
  if (kind == kForward) {
    auto fwd = ForwardPd(s, srcIn, anyWeights, e->dst);
    e->primWeights = fwd.weights_desc();
    e->prim = dnnl::convolution_forward(fwd);
    if (lowIn) LowCopy(e->src, &e->srcLow, &e->srcToLow);
  } else if (kind == kBackwardData) {
    auto hint = ForwardPd(s, srcIn, anyWeights, dstIn);
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, e->src, anyWeights, dstIn,
                                            Strides(s), Dilates(s), PadL(s), PadR(s));
    dnnl::convolution_backward_data::primitive_desc pd(d, Engine(), hint);
    e->primWeights = pd.weights_desc();
    e->prim = dnnl::convolution_backward_data(pd);
    if (lowIn) LowCopy(e->dst, &e->dstLow, &e->dstToLow);
  } else {
    const memory::desc anyDiffWeights({s.outC, s.inC, s.kH, s.kW}, dt::f32, tag::any);
    auto hint = ForwardPd(s, srcIn, anyWeights, dstIn);
    dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, srcIn, anyDiffWeights, dstIn,
                                               Strides(s), Dilates(s), PadL(s), PadR(s));
    dnnl::convolution_backward_weights::primitive_desc pd(d, Engine(), hint);
    e->primWeights = pd.diff_weights_desc();
    e->prim = dnnl::convolution_backward_weights(pd);
    if (lowIn) {
      LowCopy(e->src, &e->srcLow, &e->srcToLow);
      LowCopy(e->dst, &e->dstLow, &e->dstToLow);
    }
  }
  e->reorderWeights = e->primWeights != e->weights;
  if (e->reorderWeights) {
    e->primWeightsMem = memory(e->primWeights, Engine());
    if (kind == kBackwardWeights) {
      e->fromPrim = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), e->primWeights, Engine(), e->weights));
    } else {
      e->toPrim = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), e->weights, Engine(), e->primWeights));
    }
  }
  Entry* out = e.get();
  cache[key] = std::move(e);
  return out;
}

memory Wrap(const memory::desc& d, const float* p) { return memory(d, Engine(), const_cast<float*>(p)); }

/** The operand as the primitive reads it: the user's f32 array, or its bf16 copy. */
memory Input(const memory& user, memory& low, dnnl::reorder& toLow) {
  if (!low) return user;
  toLow.execute(Stream(), const_cast<memory&>(user), low);
  return low;
}

template <typename F>
bool Guarded(F body) {
  try {
    omp_set_num_threads(ThreadCount());
    body();
    Stream().wait();
    return true;
  } catch (const dnnl::error& err) {
    static bool warned = false;
    if (!warned) std::fprintf(stderr, "facegan: oneDNN declined a convolution (%s); using OpenBLAS for it\n", err.what());
    warned = true;
    return false;
  } catch (const Declined&) {
    return false;
  }
}

}  // namespace

bool DnnlAvailable() { return true; }

bool DnnlBf16Native() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

bool DnnlBf16() { return bf16; }

bool SetDnnlBf16(bool on) {
  std::lock_guard<std::mutex> lock(cacheMutex);
  bf16 = on;
  return bf16;
}

std::string DnnlVersion() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

bool DnnlConv2D(const ConvShape& s, const float* x, const float* filter, float* y) {
  return Guarded([&] {
    Entry* e = Get(kForward, s);
    memory w = Wrap(e->weights, filter);
    if (e->reorderWeights) {
      e->toPrim.execute(Stream(), w, e->primWeightsMem);
      w = e->primWeightsMem;
    }
    memory src = Input(Wrap(e->src, x), e->srcLow, e->srcToLow);
    e->prim.execute(Stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, Wrap(e->dst, y)}});
  });
}

bool DnnlConv2DBackpropInput(const ConvShape& s, const float* dy, const float* filter, float* dx) {
  return Guarded([&] {
    Entry* e = Get(kBackwardData, s);
    memory w = Wrap(e->weights, filter);
    if (e->reorderWeights) {
      e->toPrim.execute(Stream(), w, e->primWeightsMem);
      w = e->primWeightsMem;
    }
    memory diffDst = Input(Wrap(e->dst, dy), e->dstLow, e->dstToLow);
    e->prim.execute(Stream(), {{DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, Wrap(e->src, dx)}});
  });
}

bool DnnlConv2DBackpropFilter(const ConvShape& s, const float* x, const float* dy, float* dfilter) {
  return Guarded([&] {
    Entry* e = Get(kBackwardWeights, s);
    memory dw = Wrap(e->weights, dfilter);
    memory src = Input(Wrap(e->src, x), e->srcLow, e->srcToLow);
    memory diffDst = Input(Wrap(e->dst, dy), e->dstLow, e->dstToLow);
    e->prim.execute(Stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diffDst},
                               {DNNL_ARG_DIFF_WEIGHTS, e->reorderWeights ? e->primWeightsMem : dw}});
    if (e->reorderWeights) e->fromPrim.execute(Stream(), e->primWeightsMem, dw);
  });
}

}  // namespace facegan

#else  // OpenBLAS only

namespace facegan {
bool DnnlAvailable() { return false; }
bool DnnlBf16Native() { return false; }
bool DnnlBf16() { return false; }
bool SetDnnlBf16(bool) { return false; }
std::string DnnlVersion() { return ""; }
bool DnnlConv2D(const ConvShape&, const float*, const float*, float*) { return false; }
bool DnnlConv2DBackpropInput(const ConvShape&, const float*, const float*, float*) { return false; }
bool DnnlConv2DBackpropFilter(const ConvShape&, const float*, const float*, float*) { return false; }
}  // namespace facegan

#endif
