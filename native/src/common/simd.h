// Portable SIMD through GCC/Clang vector extensions: the same code becomes AVX-512,
// AVX2 or SSE depending on the -march the addon is built with.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace calib {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif

// aligned(4): loads and stores through this type may be unaligned.
typedef float vfloat __attribute__((vector_size(kLanes * 4), aligned(4)));
typedef int32_t vint __attribute__((vector_size(kLanes * 4), aligned(4)));

inline vfloat vload(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
inline vfloat vsplat(float x) { return vfloat{} + x; }
inline float hsum(vfloat v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }
inline vfloat vmin(vfloat a, vfloat b) { return a < b ? a : b; }

// exp(x) for float32 lanes: range reduction x = k·ln2 + r, |r| ≤ ln2/2, then a degree-6
// polynomial (Cephes expf coefficients); relative error ≈ 2 ulp. exp(-inf) = 0 and
// inputs below -87.3 flush to 0, which is what softmax needs.
inline vfloat vexp(vfloat x) {
  const vfloat hi = vsplat(88.3762626647949f), lo = vsplat(-87.3365478515625f);
  vint under = x < lo;
  x = vmin(vmax(x, lo), hi);
  vfloat fx = x * 1.44269504088896341f;
  // round to nearest
  vfloat kf = __builtin_convertvector(__builtin_convertvector(fx + vsplat(0.5f), vint), vfloat);
  kf = kf - (vfloat)(kf > fx + vsplat(0.5f) ? vsplat(1.f) : vsplat(0.f));
  vfloat r = x - kf * 0.693359375f + kf * 2.12194440e-4f;
  vfloat r2 = r * r;
  vfloat p = vsplat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.f;
  vint k = __builtin_convertvector(kf, vint);
  vint bits = (k + 127) << 23;
  vfloat scale;
  std::memcpy(&scale, &bits, sizeof scale);
  vfloat out = p * scale;
  return (vfloat)((vint)out & ~under);
}

// tanh(x) = sign(x)·(1 − 2/(exp(2|x|)+1)); for |x| < 0.0625 a Taylor polynomial keeps
// the relative error small where the formula above would cancel.
inline vfloat vtanh(vfloat x) {
  vfloat ax = vmax(x, -x);
  vfloat e = vexp(vmin(ax * 2.f, vsplat(88.f)));
  vfloat big = 1.f - 2.f / (e + 1.f);
  vfloat x2 = x * x;
  vfloat small = ax * (1.f + x2 * (-1.f / 3 + x2 * (2.f / 15 + x2 * (-17.f / 315))));
  vfloat t = ax < 0.0625f ? small : big;
  return x < 0.f ? -t : t;
}

}  // namespace calib
