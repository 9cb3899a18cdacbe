// oneDNN convolutions (see conv_dnnl.cc). Each returns false where oneDNN is
// not compiled in or declines the shape; the caller then runs OpenBLAS.
#pragma once

#include <string>

#include "kernels.h"

namespace facegan {

bool DnnlAvailable();
std::string DnnlVersion();  // "oneDNN 2.6.3", or "" without it
bool DnnlConv2D(const ConvShape& s, const float* x, const float* filter, float* y);
bool DnnlConv2DBackpropInput(const ConvShape& s, const float* dy, const float* filter, float* dx);
bool DnnlConv2DBackpropFilter(const ConvShape& s, const float* x, const float* dy, float* dfilter);

// Whether convolutions go to oneDNN (default: yes where available, unless FACEGAN_NO_ONEDNN is set).
bool UseDnnl();
void SetUseDnnl(bool on);

}  // namespace facegan
