#!/usr/bin/env bash
# Builds here what bench/gpu/flash_check.py needs on the device machine (torch there, no Node.js):
#   .device/libcalib_flash.so   the attention op's C API (calib_attention_*): native/src/model/flash_attention.cc,
#                               its CUDA kernels (flash_attention_cuda.cu, machine code for sm_90a and sm_80) and
#                               the CUDA runtime helpers, with a static CUDA runtime kept private (only calib_*
#                               is exported), stripped
# Nothing else is rebuilt (the addon and the other ops are not part of it). Carry: .device/libcalib_flash.so
# Device: python3 bench/gpu/flash_check.py --lib .device/libcalib_flash.so
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
. scripts/gpu/lib.sh
cuda_lib=$(cuda_static_lib)
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
for src in native/src/model/flash_attention_cuda.cu native/src/cuda/runtime.cu; do
  "$nvcc_bin" -std=c++17 -O3 --use_fast_math -lineinfo -Xcompiler -fPIC -Inative/include -Inative/src \
    -DCALIB_WITH_CUDA=1 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_80,code=sm_80 \
    -c "$src" -o "$obj/$(basename "$src" .cu).o" &
done
wait
mkdir -p .device
g++ -O3 -march=x86-64-v3 -std=c++17 -fPIC -shared -Inative/include -DCALIB_WITH_CUDA=1 \
  native/src/model/flash_attention.cc native/src/common/status.cc native/src/common/parallel.cc "$obj"/*.o \
  -L"$cuda_lib" -lcudart_static -ldl -lrt -lpthread -Wl,--exclude-libs,ALL -Wl,--no-undefined \
  -o .device/libcalib_flash.so.tmp
strip --strip-unneeded .device/libcalib_flash.so.tmp
mv .device/libcalib_flash.so.tmp .device/libcalib_flash.so
nm -D --defined-only .device/libcalib_flash.so | grep -q calib_attention_backward
du -h .device/libcalib_flash.so | sed 's/^/  /'
echo "bundle ready in $(( $(date +%s) - t0 )) s; carry: .device/libcalib_flash.so"
