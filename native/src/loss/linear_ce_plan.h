// The plan of a CUDA loss call: which engine, which mode, block sizes, vocabulary splits and the
// scratch layout — pure arithmetic over the shapes, the options and two device properties, with no
// CUDA call, so that it is compiled into every build and tested on the CPU (the binding exposes it
// as lossPlanCuda). linear_ce_cuda.cu plans a call here, then one engine executes the plan:
//   linear_ce_fused.cu  the fused tensor-core kernels (fp32 inputs, tile skipping, mostly ignored rows)
//   linear_ce_blas.cu   the logit kernel + cuBLAS (bf16): on Hopper our TMA-fed kernel keeps the logits
//                       in registers on their way to the statistics and to bf16 gradient blocks; elsewhere
//                       (or with D not a multiple of 8, or misaligned inputs) cuBLAS fills an fp32 slab
//
// Modes. forward: statistics only. streamed: the logits are computed twice (statistics, then gradient
// blocks), extra memory one block. chunked: whole rows in chunks whose logits are kept (workspaceBytes ≥
// min(1024, rows)·V·4), computed once. With the cuBLAS engine on Hopper and no softcap the chunk keeps
// them packed (bf16 s − tile max, fp32 tile maxima: twice the rows per byte); with a softcap, fp32.
#pragma once
#include <cstddef>
#include <cstdint>

#include "calib.h"

namespace calib::lce {

// Tile sizes shared with the kernels (static_asserts in the .cu files keep them equal).
constexpr int64_t kRowTile = 128;        // token rows of a CTA tile (kBM)
constexpr int kFusedColsBf16 = 256;      // vocabulary columns of a fused-kernel tile, bf16 (TileCfg<1>::BN, kWgBN)
constexpr int kFusedColsF32 = 128;       // same, fp32 three-plane tiles (TileCfg<3>::BN)
constexpr int kLogitTileCols = 256;      // columns of a logit-kernel tile (kLtBN)
constexpr int64_t kDefaultBlockBytes = int64_t(32) << 20;  // fused: the streamed gradient block
constexpr int64_t kDefaultSlabBytes = int64_t(56) << 20;   // cuBLAS: the slab (under 64 MiB in all at 8192×2304×256000)
constexpr int64_t kBlasWorkspaceSmall = int64_t(4) << 20;
constexpr int64_t kBlasWorkspaceLarge = int64_t(32) << 20;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
// E and C start on 16-byte boundaries (the copy engine's and the vector loads' requirement).
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// The device, as far as the plan is concerned.
struct DeviceProps {
  int sms = 0;
  int cc_major = 0;
};

// One call's problem and options (no pointers, only what changes the plan).
struct Problem {
  int64_t n = 0;      // token rows
  int64_t count = 0;  // valid tokens (target ≠ ignore_index), ≤ n
  int64_t d = 0, v = 0;
  bool bf16 = false;
  bool grad = false;       // dE and dC wanted
  bool bias = false;       // a bias is given
  bool grad_bias = false;  // and its gradient wanted
  double eps = 0;          // label smoothing
  float cap = 0;           // softcap, 0 = none
  int64_t workspace = 0;   // calib_lce_args.workspace_bytes
  float skip_threshold = 0;                   // calib_lce_cuda_options.skip_threshold (< 0 = auto)
  int gemm_impl = CALIB_LCE_GEMM_AUTO;        // calib_lce_cuda_options.gemm_impl
  bool blas_available = true;                 // cuBLAS could be loaded
  bool aligned = true;                        // E and C start on 16-byte boundaries
};

// The plan's view of a call (options null = the defaults) with `count` valid tokens.
Problem problem_from(const calib_lce_args& a, const calib_lce_cuda_options* o, int64_t count, bool blas_available);

enum Engine { kEngineFused = 0, kEngineBlas = 1 };
enum Mode { kModeForward = 0, kModeStreamed = 1, kModeChunked = 2 };

struct Plan {
  Engine engine = kEngineFused;
  Mode mode = kModeForward;
  bool wgmma = false;       // fused bf16 on Hopper: wgmma kernels (else mma.sync)
  bool dense = false;       // Σ_v s summed tile by tile (softcap with smoothing; the cuBLAS engine always)
  bool rank1 = false;       // Σ_v s as the rank-1 term E·c̄ (fused, smoothing without softcap)
  float skip_thr = 0;       // fused: gradient tiles below it are skipped (0 = exact)
  int splits = 1;           // vocabulary splits of the statistics pass (cuBLAS slab: 0)
  // fused engine
  int planes = 1, bn = kFusedColsBf16, ntiles = 0, ldf = 0;
  int64_t Rb = 0, Wb = 0;   // streamed: gradient block rows × columns
  int64_t Rc = 0, Vp = 0;   // chunked: rows per chunk, padded V
  int64_t lse_rows = 0;     // rows of a statistics launch (partials' leading dimension)
  // cuBLAS engine: slab of Rs token rows × Ws columns (ldX floats a row)
  bool tma = false;         // logits in registers (Hopper logit kernel)
  bool packed = false;      // chunked with packed bf16 logits
  int grad_splits = 1;      // streamed with tma: vocabulary splits of a gradient block
  int64_t Rs = 0, Ws = 0, ldX = 0, blas_ws_bytes = 0;
};

// Chooses the plan, or fails (TYPE/DEVICE) for options the inputs cannot take, naming the option.
calib_status plan_lce_cuda(const Problem& p, const DeviceProps& dev, Plan* out, char* err);

// Bump allocator over a base pointer (256-byte aligned pieces); with base == nullptr it only
// measures, which is how the plan's scratch bytes are computed without a device.
class Arena {
 public:
  explicit Arena(char* base) : base_(base) {}
  template <class T>
  T* take(size_t count) {
    const size_t off = (used_ + 255) & ~size_t(255);
    used_ = off + count * sizeof(T);
    return base_ && count ? reinterpret_cast<T*>(base_ + off) : nullptr;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

// Scratch of a device-memory call before the plan: the valid rows, their count, the check flags,
// the gradient weights, lse and loss per valid row — all sized by N.
struct Prologue {
  int32_t* rows = nullptr;
  long long* count = nullptr;
  unsigned long long* bad = nullptr;  // [0] first bad target, [1..4] first non-finite E, C, bias, gradOutput
  float* w = nullptr;
  float* lse_valid = nullptr;
  double* row_loss = nullptr;
};
void take_prologue(Arena& a, int64_t n, bool grad, Prologue* out);

// The plan's scratch buffers (null when the plan does not use them).
struct Buffers {
  double* cbar_d = nullptr;  // rank-1 terms
  float* cbar_f = nullptr;
  double* bsum = nullptr;
  double* s_rank1 = nullptr;
  double* cpart = nullptr;
  double* rpart = nullptr;
  float* rvec_f = nullptr;
  double* wsum = nullptr;
  int ncpart = 0, nrpart = 0;
  float* part_m = nullptr;   // statistics partials [split][row]
  float* part_l = nullptr;
  double* part_s = nullptr;
  float* tgt = nullptr;      // the target's final logit per row
  void* G = nullptr;         // fused streamed: the gradient block
  uint8_t* flags = nullptr;  // fused streamed: tile flags (skipping)
  float* gpart = nullptr;    // bias gradient partials
  float* S = nullptr;        // fused chunked: the chunk's logits
  unsigned long long* skipped = nullptr;
  int32_t* inv = nullptr;    // cuBLAS: token row → valid index or −1
  float* X = nullptr;        // cuBLAS: the slab
  float* tmax = nullptr;     // cuBLAS packed: tile maxima
  void* blas_ws = nullptr;   // cuBLAS's workspace
};
void take_buffers(Arena& a, const Problem& p, const Plan& plan, Buffers* out);

// Scratch bytes of a device-memory call: the prologue and the plan's buffers.
size_t scratch_bytes(const Problem& p, const Plan& plan);

// The most scratch any count of valid tokens can need (what a caller-provided workspace must hold):
// the plan depends on the count, which only the device knows before the call.
calib_status workspace_bound(Problem p, const DeviceProps& dev, size_t* bytes, char* err);

}  // namespace calib::lce
