// bfloat16 <-> float32 on the host. bf16 is the upper half of an IEEE float32.
#pragma once
#include <cstdint>
#include <cstring>

namespace calib {

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN stays NaN (as PyTorch does).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Copies `count` elements of a float32 or bfloat16 array into float32.
inline void to_f32(const void* src, bool bf16, int64_t offset, int64_t count, float* dst) {
  if (!bf16) {
    std::memcpy(dst, static_cast<const float*>(src) + offset, static_cast<size_t>(count) * 4);
  } else {
    const uint16_t* s = static_cast<const uint16_t*>(src) + offset;
    for (int64_t i = 0; i < count; ++i) dst[i] = bf16_to_f32(s[i]);
  }
}

}  // namespace calib
