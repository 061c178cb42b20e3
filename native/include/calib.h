/*
 * calib.h — the engine's C API: the only surface between the kernels (CPU and CUDA)
 * and the N-API binding. Plain C structs and status codes, no exceptions, no STL,
 * so that kernels stay testable and the binding stays thin.
 *
 * Every entry point validates shapes, dtypes and ranges before it touches memory
 * and reports a problem through calib_status + a message.
 */
#ifndef CALIB_H
#define CALIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CALIB_OK = 0,
  CALIB_ERR_TYPE = 1,    /* wrong dtype, wrong length, missing buffer  -> TypeError  */
  CALIB_ERR_RANGE = 2,   /* value out of range, NaN/Inf in an input     -> RangeError */
  CALIB_ERR_DEVICE = 3,  /* no CUDA device / not built with CUDA        -> Error      */
  CALIB_ERR_RUNTIME = 4  /* allocation or CUDA failure                  -> Error      */
} calib_status;

typedef enum { CALIB_F32 = 0, CALIB_BF16 = 1 } calib_dtype;
typedef enum { CALIB_REDUCE_MEAN = 0, CALIB_REDUCE_SUM = 1, CALIB_REDUCE_NONE = 2 } calib_reduction;
typedef enum { CALIB_DEVICE_CPU = 0, CALIB_DEVICE_CUDA = 1 } calib_device;
typedef enum { CALIB_IMPL_FUSED = 0, CALIB_IMPL_NAIVE = 1 } calib_impl;

/* Where the buffers of a call live. Host arrays may be given for a CUDA call (the
 * engine copies them); device pointers are only valid with CALIB_DEVICE_CUDA. */
typedef enum { CALIB_MEM_HOST = 0, CALIB_MEM_DEVICE = 1 } calib_memory;

#define CALIB_ERRLEN 512

/* ---------------------------------------------------------------------------------
 * Fused linear + label-smoothed cross-entropy.
 *
 *   z = E·Cᵀ + b            (N×V, never stored)
 *   s = softcap(z / T)      softcap(u) = c·tanh(u/c) when c > 0, identity otherwise
 *   q = (1−ε)·onehot(y) + ε/V
 *   loss_i = T·(lse(s_i) − Σ_v q_v·s_iv)          for y_i ≠ ignore_index
 *
 * Gradients are those of reduce(loss)·g for the given upstream gradient g
 * (a scalar for mean/sum, one value per token for none).
 * ------------------------------------------------------------------------------- */
typedef struct {
  /* shapes */
  int64_t n, d, v;
  calib_dtype dtype;        /* dtype of e, c (bias is always float32) */
  calib_device device;
  calib_memory memory;
  const void* e;            /* N×D, row-major */
  const void* c;            /* V×D, row-major */
  const int32_t* targets;   /* N */
  const float* bias;        /* V, or NULL */

  /* options */
  float label_smoothing;    /* ε ∈ [0,1] */
  int32_t ignore_index;
  calib_reduction reduction;
  float temperature;        /* T > 0 */
  float softcap;            /* c > 0, or 0 for none */
  calib_impl impl;
  int64_t workspace_bytes;  /* CUDA: budget for keeping logit tiles; 0 = fully streamed */
  int32_t threads;          /* CPU threads; 0 = engine default */
  int32_t deterministic;    /* CUDA: reproducible accumulation order */
  int32_t check_finite;     /* scan host inputs for NaN/Inf before computing */

  /* outputs (float32) */
  float* loss;              /* N (reduction none) or 1 */
  float* lse;               /* N, or NULL; NaN for ignored tokens (not computed) */

  /* gradient request: all NULL = forward only */
  const float* grad_output; /* 1 (mean/sum) or N (none); NULL means 1.0 */
  float* grad_e;            /* N×D, or NULL */
  float* grad_c;            /* V×D, or NULL */
  float* grad_bias;         /* V, or NULL (only with bias) */

  /* statistics filled by the call */
  int64_t valid_count;      /* tokens with target ≠ ignore_index */
} calib_lce_args;

calib_status calib_linear_cross_entropy(calib_lce_args* args, char* err /* CALIB_ERRLEN */);

/* ---------------------------------------------------------------------------------
 * Engine information.
 * ------------------------------------------------------------------------------- */
typedef struct {
  int32_t cuda_built;       /* compiled with the CUDA path */
  int32_t cuda_devices;     /* devices found, 0 when none or no driver */
  char cuda_message[256];   /* why there is no device, or the device name */
  int32_t cpu_threads;      /* threads the CPU path uses by default */
} calib_info;

void calib_get_info(calib_info* info);
void calib_set_threads(int32_t threads); /* 0 = hardware concurrency */

#ifdef __cplusplus
}
#endif
#endif /* CALIB_H */
