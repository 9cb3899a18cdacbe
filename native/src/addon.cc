// N-API bindings. Every function works in place on typed arrays owned by
// JavaScript (zero copies) and checks each array's type and length against
// the shape it is given before any kernel touches memory.
#include <node_api.h>

#include <cblas.h>

#include <cstdint>
#include <string>

#include "conv_dnnl.h"
#include "kernels.h"
#include "parallel.h"

extern "C" {
// Declared by OpenBLAS' cblas.h in most builds; repeated here for builds whose header omits them.
char* openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
}

namespace facegan {
namespace {

struct Failed {};  // thrown after a JS exception is pending; caught at the binding edge

void Check(napi_env env, napi_status status) {
  if (status != napi_ok) {
    const napi_extended_error_info* info = nullptr;
    napi_get_last_error_info(env, &info);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, info && info->error_message ? info->error_message : "N-API call failed");
    throw Failed{};
  }
}

[[noreturn]] void Throw(napi_env env, const std::string& message) {
  napi_throw_range_error(env, nullptr, message.c_str());
  throw Failed{};
}

struct Args {
  napi_env env;
  size_t count = 12;
  napi_value values[12];
  Args(napi_env e, napi_callback_info info, size_t expected) : env(e) {
    Check(env, napi_get_cb_info(env, info, &count, values, nullptr, nullptr));
    if (count < expected) Throw(env, "expected " + std::to_string(expected) + " arguments");
  }

  template <typename T>
  T* Array(size_t i, napi_typedarray_type type, size_t minLength, const char* what) {
    bool isTyped = false;
    Check(env, napi_is_typedarray(env, values[i], &isTyped));
    if (!isTyped) Throw(env, std::string(what) + " must be a typed array");
    napi_typedarray_type actual;
    size_t length;
    void* data;
    Check(env, napi_get_typedarray_info(env, values[i], &actual, &length, &data, nullptr, nullptr));
    if (actual != type) Throw(env, std::string(what) + " has the wrong element type");
    if (length < minLength) {
      Throw(env, std::string(what) + " holds " + std::to_string(length) + " values, needs " + std::to_string(minLength));
    }
    return static_cast<T*>(data);
  }
  float* Floats(size_t i, size_t minLength, const char* what) {
    return Array<float>(i, napi_float32_array, minLength, what);
  }
  bool IsNull(size_t i) {
    napi_valuetype t;
    Check(env, napi_typeof(env, values[i], &t));
    return t == napi_null || t == napi_undefined;
  }
  double Number(size_t i) {
    double v;
    Check(env, napi_get_value_double(env, values[i], &v));
    return v;
  }
  int64_t Int(size_t i, int64_t min = 0) {
    const double v = Number(i);
    if (!(v >= double(min)) || v != double(int64_t(v))) Throw(env, "expected an integer >= " + std::to_string(min));
    return int64_t(v);
  }
};

napi_value Undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

template <typename F>
napi_value Guard(napi_env env, F body) {
  try {
    body();
  } catch (const Failed&) {
  }
  return Undefined(env);
}

ConvShape ReadConvShape(Args& a, size_t i) {
  const int32_t* d = a.Array<int32_t>(i, napi_int32_array, 15, "conv shape");
  ConvShape s{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14]};
  for (int k = 0; k < 13; ++k) {
    if (d[k] <= 0) Throw(a.env, "conv shape values must be positive");
  }
  return s;
}

size_t InSize(const ConvShape& s) { return size_t(s.batch) * s.inH * s.inW * s.inC; }
size_t OutSize(const ConvShape& s) { return size_t(s.batch) * s.outH * s.outW * s.outC; }
size_t FilterSize(const ConvShape& s) { return size_t(s.PatchSize()) * s.outC; }

napi_value JsConv2D(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4);
    const ConvShape s = ReadConvShape(a, 3);
    Conv2D(s, a.Floats(0, InSize(s), "x"), a.Floats(1, FilterSize(s), "filter"), a.Floats(2, OutSize(s), "y"));
  });
}

napi_value JsConv2DBackpropInput(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4);
    const ConvShape s = ReadConvShape(a, 3);
    Conv2DBackpropInput(s, a.Floats(0, OutSize(s), "dy"), a.Floats(1, FilterSize(s), "filter"),
                        a.Floats(2, InSize(s), "dx"));
  });
}

napi_value JsConv2DBackpropFilter(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4);
    const ConvShape s = ReadConvShape(a, 3);
    Conv2DBackpropFilter(s, a.Floats(0, InSize(s), "x"), a.Floats(1, OutSize(s), "dy"),
                         a.Floats(2, FilterSize(s), "dfilter"));
  });
}

// matMul(a, b, c, transA, transB, m, n, k): c[m, n] = op(a) op(b).
napi_value JsMatMul(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 8);
    bool ta, tb;
    Check(env, napi_get_value_bool(env, a.values[3], &ta));
    Check(env, napi_get_value_bool(env, a.values[4], &tb));
    const int64_t m = a.Int(5, 1), n = a.Int(6, 1), k = a.Int(7, 1);
    MatMul(ta, tb, int(m), int(n), int(k), a.Floats(0, size_t(m * k), "a"), a.Floats(1, size_t(k * n), "b"),
           a.Floats(2, size_t(m * n), "c"));
  });
}

// unary(op, x, y, alpha)
napi_value JsUnary(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4);
    const int64_t op = a.Int(0);
    if (op >= int64_t(UnaryOp::kCount)) Throw(env, "unknown unary op");
    size_t n;
    Check(env, napi_get_typedarray_info(env, a.values[1], nullptr, &n, nullptr, nullptr, nullptr));
    Unary(UnaryOp(op), a.Floats(1, n, "x"), a.Floats(2, n, "y"), n, float(a.Number(3)));
  });
}

// A broadcast layout: shape[4], aStride[4], bStride[4]; returns the extent each operand needs.
struct Layout {
  int64_t shape[kMaxDims], as[kMaxDims], bs[kMaxDims];
  size_t outLen = 1, aLen = 1, bLen = 1;
};

Layout ReadLayout(Args& a, size_t i) {
  const int32_t* d = a.Array<int32_t>(i, napi_int32_array, 3 * kMaxDims, "broadcast layout");
  Layout l;
  for (int k = 0; k < kMaxDims; ++k) {
    l.shape[k] = d[k];
    l.as[k] = d[kMaxDims + k];
    l.bs[k] = d[2 * kMaxDims + k];
    if (l.shape[k] <= 0 || l.as[k] < 0 || l.bs[k] < 0) Throw(a.env, "bad broadcast layout");
    l.outLen *= size_t(l.shape[k]);
    l.aLen += size_t(l.as[k] * (l.shape[k] - 1));
    l.bLen += size_t(l.bs[k] * (l.shape[k] - 1));
  }
  return l;
}

// binary(op, a, b, out, layout)
napi_value JsBinary(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 5);
    const int64_t op = a.Int(0);
    if (op >= int64_t(BinaryOp::kCount)) Throw(env, "unknown binary op");
    const Layout l = ReadLayout(a, 4);
    Binary(BinaryOp(op), a.Floats(1, l.aLen, "a"), l.as, a.Floats(2, l.bLen, "b"), l.bs, a.Floats(3, l.outLen, "out"),
           l.shape);
  });
}

// compare(op, a, b, out: Uint8Array, layout)
napi_value JsCompare(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 5);
    const int64_t op = a.Int(0);
    if (op >= int64_t(CompareOp::kCount)) Throw(env, "unknown comparison");
    const Layout l = ReadLayout(a, 4);
    Compare(CompareOp(op), a.Floats(1, l.aLen, "a"), l.as, a.Floats(2, l.bLen, "b"), l.bs,
            a.Array<uint8_t>(3, napi_uint8_array, l.outLen, "out"), l.shape);
  });
}

// reduceSum(x, out, outer, mid, inner, scale)
napi_value JsReduceSum(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 6);
    const int64_t outer = a.Int(2, 1), mid = a.Int(3, 1), inner = a.Int(4, 1);
    ReduceSum(a.Floats(0, size_t(outer * mid * inner), "x"), size_t(outer), size_t(mid), size_t(inner),
              float(a.Number(5)), a.Floats(1, size_t(outer * inner), "out"));
  });
}

// select(cond: Uint8Array, a, b, out)
napi_value JsSelect(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4);
    size_t n;
    Check(env, napi_get_typedarray_info(env, a.values[3], nullptr, &n, nullptr, nullptr, nullptr));
    Select(a.Array<uint8_t>(0, napi_uint8_array, n, "condition"), a.Floats(1, n, "a"), a.Floats(2, n, "b"),
           a.Floats(3, n, "out"), n);
  });
}

size_t Length(napi_env env, napi_value v) {
  size_t n;
  Check(env, napi_get_typedarray_info(env, v, nullptr, &n, nullptr, nullptr, nullptr));
  return n;
}

// The length of argument i, an activation [..., channels]: a whole number of rows.
size_t RowMajorLength(Args& a, size_t i, size_t channels) {
  const size_t n = Length(a.env, a.values[i]);
  if (n % channels != 0) Throw(a.env, "x's size is not a multiple of its channels");
  return n;
}

// batchNorm(x, channels, mean, variance, scale | null, offset | null, eps, y)
napi_value JsBatchNorm(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 8);
    const size_t channels = size_t(a.Int(1, 1));
    const size_t n = RowMajorLength(a, 0, channels);
    auto perChannel = [&](size_t i, const char* what, size_t* len) -> const float* {
      if (a.IsNull(i)) return nullptr;
      *len = Length(env, a.values[i]);
      if (*len != 1 && *len != channels) Throw(env, std::string(what) + " must hold 1 or one value per channel");
      return a.Floats(i, *len, what);
    };
    size_t meanLen = 0, varLen = 0, scaleLen = 0, offsetLen = 0;
    const float* mean = perChannel(2, "mean", &meanLen);
    const float* variance = perChannel(3, "variance", &varLen);
    if (!mean || !variance) Throw(env, "mean and variance are required");
    const float* scale = perChannel(4, "scale", &scaleLen);
    const float* offset = perChannel(5, "offset", &offsetLen);
    BatchNorm(a.Floats(0, n, "x"), n, channels, mean, meanLen, variance, varLen, scale, scaleLen, offset, offsetLen,
              float(a.Number(6)), a.Floats(7, n, "y"));
  });
}

// activationGrad(dy, x, dx, alpha, relu)
napi_value JsActivationGrad(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 5);
    const size_t n = Length(env, a.values[0]);
    bool relu;
    Check(env, napi_get_value_bool(env, a.values[4], &relu));
    ActivationGrad(a.Floats(0, n, "dy"), a.Floats(1, n, "x"), a.Floats(2, n, "dx"), n, float(a.Number(3)), relu);
  });
}

// batchNormGradStats(x, dy, channels, mean, sumDy: Float64Array, sumDyXmu: Float64Array)
napi_value JsBatchNormGradStats(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 6);
    const size_t channels = size_t(a.Int(2, 1));
    const size_t n = RowMajorLength(a, 0, channels);
    const size_t meanLen = Length(env, a.values[3]);
    if (meanLen != 1 && meanLen != channels) Throw(env, "mean must hold 1 or one value per channel");
    BatchNormGradStats(a.Floats(0, n, "x"), a.Floats(1, n, "dy"), n, channels, a.Floats(3, meanLen, "mean"), meanLen,
                       a.Array<double>(4, napi_float64_array, channels, "sumDy"),
                       a.Array<double>(5, napi_float64_array, channels, "sumDyXmu"));
  });
}

// moments(x, channels, mean, variance)
napi_value JsMoments(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 4);
    const size_t channels = size_t(a.Int(1, 1));
    const size_t n = RowMajorLength(a, 0, channels);
    if (n == 0) Throw(env, "x is empty");
    Moments(a.Floats(0, n, "x"), n, channels, a.Floats(2, channels, "mean"), a.Floats(3, channels, "variance"));
  });
}

// batchNormTrainGrad(x, dy, channels, mean, variance, gamma, eps, dx, dgamma, dbeta)
napi_value JsBatchNormTrainGrad(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 10);
    const size_t channels = size_t(a.Int(2, 1));
    const size_t n = RowMajorLength(a, 0, channels);
    BatchNormTrainGrad(a.Floats(0, n, "x"), a.Floats(1, n, "dy"), n, channels, a.Floats(3, channels, "mean"),
                       a.Floats(4, channels, "variance"), a.Floats(5, channels, "gamma"), float(a.Number(6)),
                       a.Floats(7, n, "dx"), a.Floats(8, channels, "dgamma"), a.Floats(9, channels, "dbeta"));
  });
}

// adamStep(value, m, v, grad, newValue, newM, newV, constants: Float64Array[8])
napi_value JsAdamStep(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 8);
    const size_t n = Length(env, a.values[0]);
    const double* c = a.Array<double>(7, napi_float64_array, 8, "adam constants");
    const AdamConstants k{float(c[0]), float(c[1]), float(c[2]), float(c[3]), float(c[4]), float(c[5]), float(c[6]),
                          float(c[7])};
    AdamStep(k, a.Floats(0, n, "value"), a.Floats(1, n, "m"), a.Floats(2, n, "v"), a.Floats(3, n, "grad"),
             a.Floats(4, n, "newValue"), a.Floats(5, n, "newM"), a.Floats(6, n, "newV"), n);
  });
}

napi_value JsSetThreads(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 1);
    SetThreadCount(int(a.Int(0, 1)));
  });
}

// useOneDnn(on): convolutions on oneDNN (where compiled in) or on OpenBLAS.
napi_value JsUseOneDnn(napi_env env, napi_callback_info info) {
  return Guard(env, [&] {
    Args a(env, info, 1);
    bool on;
    Check(env, napi_get_value_bool(env, a.values[0], &on));
    SetUseDnnl(on);
  });
}

// useBf16(on): oneDNN convolutions on bf16 inputs (f32 accumulation and outputs); returns the mode in force.
napi_value JsUseBf16(napi_env env, napi_callback_info info) {
  napi_value result = nullptr;
  Guard(env, [&] {
    Args a(env, info, 1);
    bool on;
    Check(env, napi_get_value_bool(env, a.values[0], &on));
    Check(env, napi_get_boolean(env, SetDnnlBf16(on && DnnlAvailable()), &result));
  });
  return result ? result : Undefined(env);
}

napi_value JsInfo(napi_env env, napi_callback_info) {
  napi_value out = nullptr, config, threads, conv, dnnl, bf16, bf16Native;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &config);
  napi_create_int32(env, ThreadCount(), &threads);
  const std::string version = DnnlVersion();
  napi_create_string_utf8(env, version.c_str(), NAPI_AUTO_LENGTH, &dnnl);
  napi_create_string_utf8(env, UseDnnl() ? version.c_str() : "OpenBLAS", NAPI_AUTO_LENGTH, &conv);
  napi_set_named_property(env, out, "blasConfig", config);
  napi_set_named_property(env, out, "threads", threads);
  napi_set_named_property(env, out, "oneDnn", dnnl);
  napi_set_named_property(env, out, "convPath", conv);
  napi_get_boolean(env, UseDnnl() && DnnlBf16(), &bf16);
  napi_get_boolean(env, DnnlBf16Native(), &bf16Native);
  napi_set_named_property(env, out, "bf16", bf16);
  napi_set_named_property(env, out, "bf16Native", bf16Native);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"conv2d", nullptr, JsConv2D, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"conv2dBackpropInput", nullptr, JsConv2DBackpropInput, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"conv2dBackpropFilter", nullptr, JsConv2DBackpropFilter, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"matMul", nullptr, JsMatMul, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"unary", nullptr, JsUnary, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"binary", nullptr, JsBinary, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"compare", nullptr, JsCompare, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"reduceSum", nullptr, JsReduceSum, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"select", nullptr, JsSelect, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"batchNorm", nullptr, JsBatchNorm, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"activationGrad", nullptr, JsActivationGrad, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"batchNormGradStats", nullptr, JsBatchNormGradStats, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"moments", nullptr, JsMoments, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"batchNormTrainGrad", nullptr, JsBatchNormTrainGrad, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"adamStep", nullptr, JsAdamStep, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setThreads", nullptr, JsSetThreads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"useOneDnn", nullptr, JsUseOneDnn, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"useBf16", nullptr, JsUseBf16, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"info", nullptr, JsInfo, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace
}  // namespace facegan

NAPI_MODULE(NODE_GYP_MODULE_NAME, facegan::Init)
