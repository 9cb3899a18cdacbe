// oneDNN convolutions (see conv_dnnl.cc). Each returns false where oneDNN is
// not compiled in or declines the shape; the caller then runs OpenBLAS.
#pragma once

#include <string>

#include "kernels.h"

namespace facegan {

bool DnnlAvailable();
std::string DnnlVersion();  // "oneDNN 2.6.3", or "" without it
// Whether the CPU has bf16 dot-product instructions (AVX512_BF16 or AMX) that oneDNN uses.
bool DnnlBf16Native();
// Convolutions read bf16 copies of their inputs and accumulate and write f32 (off by default).
bool DnnlBf16();
bool SetDnnlBf16(bool on);  // returns the mode now in force
bool DnnlConv2D(const ConvShape& s, const float* x, const float* filter, float* y);
bool DnnlConv2DBackpropInput(const ConvShape& s, const float* dy, const float* filter, float* dx);
bool DnnlConv2DBackpropFilter(const ConvShape& s, const float* x, const float* dy, float* dfilter);

// Whether convolutions go to oneDNN (default: yes where available, unless FACEGAN_NO_ONEDNN is set).
bool UseDnnl();
void SetUseDnnl(bool on);

}  // namespace facegan
