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
 * Causal self-attention, flash style (native/src/model/flash_attention.h has the full contract).
 *
 *   s_ij = scale·q_i·k_j, or c·tanh(scale·q_i·k_j / c) with a soft-cap c > 0 (Gemma 2)
 *   key j is visible to query i iff j ≤ i (and i − window < j with a sliding window > 0)
 *   o_i = Σ_j softmax_j(s_i)·v_j,   lse_i = log Σ_j exp(s_ij)   (natural log)
 * Grouped-query attention: query head h reads key/value head h / (hq / hkv).
 * q, o, grad_o, grad_q: [b, t, hq, head_dim]; k, v, grad_k, grad_v: [b, t, hkv, head_dim]; all contiguous,
 * elements of `dtype`. lse: [b, hq, t] float32.
 * CPU: a float64-accumulating reference (float32 or bfloat16 elements, any head_dim). CUDA: bfloat16 only,
 * head_dim ≤ 256 (64 and 128 on tensor cores, mma.sync sm_80+; others a row at a time, slower), fp32
 * accumulation, never stores t×t, deterministic
 * backward (no atomics). Forward reads q, k, v and writes o, lse; backward reads q, k, v, o, lse, grad_o and
 * writes grad_q, grad_k, grad_v.
 * ------------------------------------------------------------------------------- */
typedef struct {
  int64_t b, t, hq, hkv, head_dim; /* ≥ 1; hq a multiple of hkv */
  calib_dtype dtype;        /* element type of q, k, v, o, grad_* (CUDA: CALIB_BF16 only) */
  calib_device device;
  calib_memory memory;      /* CALIB_MEM_DEVICE: every buffer is a device pointer (CUDA only, 16-byte aligned) */
  float scale;              /* > 0, finite: the factor of q·k (1/√head_dim usually) */
  float softcap;            /* 0 none, else > 0 */
  int64_t window;           /* 0 none, else ≥ 1 */
  int32_t threads;          /* CPU threads; 0 = engine default */
  void* stream;             /* CUDA: a cudaStream_t (NULL = legacy default stream) */
  void* workspace;          /* CUDA backward, device memory: caller scratch of calib_attention_workspace_size()
                               bytes (NULL = the engine's arena; the call then waits for its stream) */
  int64_t workspace_size;
  const void* q;
  const void* k;
  const void* v;
  void* o;                  /* forward: output; backward: input */
  float* lse;               /* forward: output; backward: input */
  const void* grad_o;       /* backward only */
  void* grad_q;
  void* grad_k;
  void* grad_v;
} calib_attention_args;

calib_status calib_attention_forward(calib_attention_args* args, char* err /* CALIB_ERRLEN */);
calib_status calib_attention_backward(calib_attention_args* args, char* err /* CALIB_ERRLEN */);
/* Device scratch bytes the CUDA backward needs (4·b·hq·t, rounded up to 256); validates the shapes. */
calib_status calib_attention_workspace_size(const calib_attention_args* args, int64_t* bytes, char* err);

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

/* =================================================================================
 * Model: a GPT-2-style decoder-only transformer (issue 5: CPU; issue 9: CUDA).
 *
 *   x0 = wte[tok] + wpe[pos]
 *   per block l:  x = x + attn(LN1(x)),  x = x + mlp(LN2(x))     (pre-LayerNorm)
 *     attn: causal multi-head self-attention, qkv = LN1(x)·Wqkvᵀ + b, proj Wo
 *     mlp:  GELU(tanh approximation), hidden 4·d_model
 *   h = LN_f(x);  logits z = h·Hᵀ with H = wte (tied, default) or lm_head
 *
 * Parameters, gradients and the AdamW moments live in flat buffers, one per kind, with the
 * same per-tensor offsets (llm.c layout, weights out×in as nn.Linear). calib_model_tensor
 * describes each tensor; tensors of the blocks are stacked over layers ([L, ...]).
 * The loss is the fused label-smoothed cross-entropy above (reduction sum, scaled).
 *
 * A model handle is not thread-safe: one call at a time per handle.
 * =============================================================================== */
typedef struct calib_model calib_model; /* opaque */

/* BF16 (CUDA only): mixed precision — fp32 master weights, gradients and AdamW moments, bf16
 * weights and activations for the matmuls and the LM head, fp32 accumulation, fp32 residual
 * stream and LayerNorm statistics. The flat buffers (read/write) are float32 as for F32. */
typedef enum { CALIB_MODEL_F32 = 0, CALIB_MODEL_F64 = 1, CALIB_MODEL_BF16 = 2 } calib_model_precision;

/* The architecture of a model. GPT2: the model described above (LayerNorm, learned positions, GELU MLP,
 * biases). LLAMA: a decoder-only transformer as Hugging Face's LlamaForCausalLM defines it, with the
 * variants that only change its pieces (calib_llama_config): Qwen2, Mistral, SmolLM2, Gemma 2.
 *   x0 = embed[tok] · embed_scale
 *   per layer l:  h = attn(norm(x)) ;  x = x + (post_norms ? norm(h) : h)
 *                 h = mlp(norm(x))  ;  x = x + (post_norms ? norm(h) : h)
 *     norm:  RMSNorm in fp32, x / √(mean(x²) + eps) · w   (norm_plus_one: · (1 + w))
 *     attn:  q, k, v projections (+ bias when qkv_bias), rotary embedding of q and k (rotate-half layout),
 *            causal grouped-query attention (n_head query heads share n_kv_head key/value heads), logits
 *            scaled by attn_scale and soft-capped (attn_softcap), optionally within a sliding window;
 *            output projection o (no bias)
 *     mlp:   down(act(gate(x)) ⊙ up(x)), act = SiLU (SwiGLU) or tanh-GELU (GeGLU); no biases
 *   h = norm_f(x);  logits = h·Hᵀ, H = embed (tied) or lm_head
 * Parameter tensors (flat buffers as for GPT2, matmul weights out×in, stacked over layers):
 *   "embed" [V, d], "attn_norm" [L, d], "q" [L, H·hd, d], "k" [L, KV·hd, d], "v" [L, KV·hd, d],
 *   "q_bias" [L, H·hd], "k_bias" [L, KV·hd], "v_bias" [L, KV·hd] (qkv_bias only), "o" [L, d, H·hd],
 *   "attn_post_norm" [L, d] (post_norms only), "mlp_norm" [L, d], "gate" [L, ff, d], "up" [L, ff, d],
 *   "down" [L, d, ff], "mlp_post_norm" [L, d] (post_norms only), "norm_f" [d], "lm_head" [V, d] (untied). */
typedef enum { CALIB_ARCH_GPT2 = 0, CALIB_ARCH_LLAMA = 1 } calib_model_arch;
typedef enum { CALIB_ROPE_DEFAULT = 0, CALIB_ROPE_LINEAR = 1, CALIB_ROPE_LLAMA3 = 2 } calib_rope_type;
typedef enum { CALIB_ACT_SILU = 0, CALIB_ACT_GELU_TANH = 1 } calib_mlp_act;

typedef struct {
  int32_t n_kv_head;        /* ≥ 1, divides n_head (GQA; n_head for plain multi-head attention) */
  int32_t head_dim;         /* ≥ 1 (Hugging Face's head_dim, else hidden_size / num_attention_heads) */
  int32_t d_ff;             /* intermediate_size */
  float norm_eps;           /* rms_norm_eps > 0 */
  int32_t norm_plus_one;    /* Gemma: RMSNorm scales by (1 + w) */
  int32_t post_norms;       /* Gemma 2: RMSNorm of the attention and MLP outputs before the residual add */
  int32_t qkv_bias;         /* Qwen2: biases on q, k, v */
  calib_mlp_act mlp_act;
  float embed_scale;        /* 1, or √hidden_size (Gemma), applied to the embedding rows */
  float rope_theta;         /* > 0 */
  calib_rope_type rope_type;
  float rope_factor;        /* linear / llama3: the scaling factor */
  float rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
  int32_t rope_original_context;                     /* llama3: original_max_position_embeddings */
  float attn_scale;         /* > 0: the factor of q·k (1/√head_dim; Gemma 2: query_pre_attn_scalar^-1/2) */
  float attn_softcap;       /* 0 none; Gemma 2: attn_logit_softcapping (50) */
  int32_t sliding_window;   /* 0 none; else keys within this many positions (key > query − window) */
  int32_t sliding_period;   /* with a window: layer l slides when l % sliding_period == 0 (Gemma 2: 2); 1 = all */
} calib_llama_config;

typedef struct {
  int32_t n_layer;    /* ≥ 1 */
  int32_t n_head;     /* ≥ 1, divides d_model */
  int32_t d_model;    /* ≥ 1 */
  int32_t context;    /* maximum sequence length T (GPT2: rows of wpe) */
  int32_t vocab;      /* V ≥ 2 */
  int32_t tied;       /* 1: the LM head is wte; 0: a separate lm_head (V×d_model) */
  int32_t max_batch;  /* activations are allocated for max_batch × context positions */
  calib_device device;
  /* F32 trains; F64 is the float64 reference used by gradient checks (CPU only; its LM head
   * is a direct implementation of the same loss, not the fused op); BF16 is CUDA's mixed
   * precision. On CUDA, F32 computes in fp32 (cuBLAS without TF32). */
  calib_model_precision precision;
  int32_t threads;    /* CPU threads; 0 = engine default */
  calib_model_arch arch;      /* GPT2 (default, 0) or LLAMA */
  calib_llama_config llama;   /* arch LLAMA only (context is then the longest sequence; no position table) */
  /* CUDA: bytes of logits the LM head's fused loss may keep (its workspace_bytes: ≥ min(1024, rows)·V·4 computes
   * the logits once, in chunks; 0 = the fully streamed mode). The trainer passes its run config's value. */
  int64_t head_workspace_bytes;
  /* LLAMA on CUDA: gradient checkpointing — the first checkpoint_layers layers keep only their input and
   * recompute their activations in the backward (0 none … n_layer all). Other models keep every activation;
   * the value is validated (0 … n_layer) and has no effect there. */
  int32_t checkpoint_layers;
} calib_model_config;

typedef enum {
  CALIB_BUF_PARAMS = 0,
  CALIB_BUF_GRADS = 1,
  CALIB_BUF_ADAM_M = 2,
  CALIB_BUF_ADAM_V = 3
} calib_model_buffer;

typedef struct {
  char name[24];      /* GPT2: "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
                         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb", "lm_head";
                         LLAMA: the names of calib_llama_config's comment */
  int64_t offset;     /* elements from the start of the flat buffer */
  int64_t numel;
  int32_t ndim;       /* 1..3 */
  int64_t shape[3];
  int32_t per_layer;  /* 1: shape[0] is n_layer */
  int32_t decay;      /* 1: AdamW weight decay applies (matmul weights; not LN, biases, embeddings) */
} calib_model_tensor;

/* Creation validates the configuration. device CALIB_DEVICE_CUDA (issue 9, native/src/model/gpt_cuda.cu):
 * parameters, gradients, moments and activations live on the current GPU between calls; every
 * call below takes and returns host arrays as on the CPU. cuBLAS is loaded at run time
 * (CALIB_CUBLAS_PATH overrides the search); no GPU, no driver or no cuBLAS give CALIB_ERR_DEVICE
 * with the reason. Activations are allocated for max_batch × context (≤ 2,000,000 tokens). */
calib_status calib_model_create(const calib_model_config* config, calib_model** out, char* err);
void calib_model_free(calib_model* model); /* NULL is fine */
int64_t calib_model_num_params(const calib_model* model);
int32_t calib_model_num_tensors(const calib_model* model);
calib_status calib_model_tensor_info(const calib_model* model, int32_t index, calib_model_tensor* out, char* err);

/* Copy [offset, offset+count) of a flat buffer out of / into the model. Elements are float32
 * for F32 models and float64 for F64 models. */
calib_status calib_model_read(calib_model* model, calib_model_buffer which, int64_t offset, int64_t count,
                              void* dst, char* err);
calib_status calib_model_write(calib_model* model, calib_model_buffer which, int64_t offset, int64_t count,
                               const void* src, char* err);

/* Initialisation from a seed. GPT2: weights N(0, std) (std = 0.02 when 0 is given), the two
 * residual projections (attprojw, fcprojw) N(0, std/√(2·n_layer)), biases 0, LayerNorm
 * weights 1. LLAMA: the embedding and matrices N(0, std), biases 0, norms 1 (0 with norm_plus_one).
 * Values are rounded to float32 for every precision. Zeroes grads and moments. */
calib_status calib_model_init(calib_model* model, uint64_t seed, float std, char* err);

/* One micro-batch: forward, loss, and (backward = 1) gradients *added* to the grads buffer.
 *   loss_sum = Σ over supervised tokens of T·(lse(s) − (1−ε)·s_y − ε/V·Σ_v s),  s = softcap(z/T)
 *   gradients are those of grad_scale · loss_sum; grad_scale = 0 means 1/valid_count (the mean).
 * For gradient accumulation pass grad_scale = 1/(supervised tokens of the whole step). */
typedef struct {
  int32_t b, t;              /* 1 ≤ t ≤ context, b ≥ 1, b·t ≤ max_batch·context */
  const int32_t* inputs;     /* b×t token ids in [0, V) */
  const int32_t* targets;    /* b×t: ids in [0, V), or ignore_index (not supervised) */
  float label_smoothing;     /* ε ∈ [0, 1] */
  float temperature;         /* T > 0 */
  float softcap;             /* c > 0, or 0 for none */
  int32_t ignore_index;
  int32_t backward;          /* 1: accumulate gradients */
  float grad_scale;          /* ≥ 0 */
  /* outputs */
  double loss_sum;           /* NaN/Inf are reported here, never hidden */
  int64_t valid_count;
} calib_model_step_args;

calib_status calib_model_step(calib_model* model, calib_model_step_args* args, char* err);
calib_status calib_model_zero_grad(calib_model* model, char* err);

/* Global L2 norm of the grads buffer (float64 accumulation, deterministic); tensor_norms, when
 * not NULL, receives one norm per tensor (calib_model_num_tensors entries). Non-finite
 * gradients give a NaN or Inf norm. */
calib_status calib_model_grad_norm(calib_model* model, double* norm, double* tensor_norms, char* err);

/* PyTorch AdamW on every parameter: g = grad_scale·grad (clipping), then
 *   p ← p·(1 − lr·wd)  (tensors with decay only);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − lr · (m/(1−β1^step)) / (√(v/(1−β2^step)) + eps) */
typedef struct {
  float lr, beta1, beta2, eps, weight_decay;
  float grad_scale;          /* > 0; 1 = no clipping */
  int64_t step;              /* ≥ 1, for the bias correction */
} calib_adamw_args;

calib_status calib_model_adamw(calib_model* model, const calib_adamw_args* args, char* err);

/* The same update on the flat range [begin, end) of the buffers only (each tensor's part of it, with
 * that tensor's decay): one rank's shard under ZeRO-1 data parallelism (backend/train/dp). The update
 * is elementwise, so the range gets exactly the values calib_model_adamw gives there. CPU models;
 * a CUDA model gives CALIB_ERR_DEVICE. */
calib_status calib_model_adamw_range(calib_model* model, const calib_adamw_args* args, int64_t begin, int64_t end,
                                     char* err);

/* Evaluation of the next-token distribution p = softmax(softcap(z/T)) at chosen positions.
 * Every output is optional (NULL = not wanted) and has one entry per evaluated row
 * (top_ids/top_p: top_k per row; option_logits: n_options per row). */
typedef struct {
  int32_t b, t;
  const int32_t* inputs;     /* b×t */
  const int32_t* targets;    /* b×t or NULL; entries equal to ignore_index give NaN p_target */
  int32_t ignore_index;
  const int32_t* rows;       /* rows of the b×t positions to evaluate (index b·t + position), or NULL = all */
  int64_t n_rows;            /* entries of rows (ignored when rows is NULL) */
  float temperature;         /* T > 0 (1 = raw logits) */
  float softcap;             /* 0 = none */
  int32_t top_k;             /* 0..16 */
  const int32_t* option_ids; /* token ids whose (transformed) logits are returned, or NULL */
  int32_t n_options;
  /* outputs */
  int32_t* argmax;
  float* p_target;
  float* nll;                /* −log p(target) = lse − s_target, computed in float64 (NaN like p_target) */
  float* p_max;
  float* entropy;            /* nats */
  float* lse;
  int32_t* top_ids;
  float* top_p;
  float* option_logits;
} calib_model_eval_args;

calib_status calib_model_eval(calib_model* model, calib_model_eval_args* args, char* err);


/* NCCL for data parallelism over several GPUs, loaded at run time (CALIB_NCCL_PATH, then libnccl.so.2 on
 * the loader's path and the CUDA folders, then PyTorch's nvidia-nccl wheel under python site-packages).
 * Returns 1 when it loads with every collective data parallelism needs: path and version (NCCL's code,
 * e.g. 22703 for 2.27.3) are filled in. Returns 0 otherwise, with what was tried in message. Loading
 * needs no GPU; the answer is found once per process. */
int32_t calib_nccl_status(char* path, size_t path_len, int32_t* version, char* message, size_t message_len);

/* ---------------------------------------------------------------------------------
 * CUDA: device memory, options and statistics (built with CUDA only; a build without
 * CUDA does not define these symbols — check calib_get_info().cuda_built first).
 *
 * Device buffers are plain cudaMalloc allocations on the current device. A call of
 * calib_linear_cross_entropy with memory CALIB_MEM_DEVICE takes device pointers for
 * every buffer (e, c, targets, bias, grad_output, loss, lse, grad_*), runs on the
 * GPU with no host copies of the data, validates targets (and, with check_finite,
 * E/C/bias/grad_output) on the device, and reads back only a few status words.
 * ------------------------------------------------------------------------------- */
typedef enum { CALIB_COPY_H2D = 0, CALIB_COPY_D2H = 1, CALIB_COPY_D2D = 2 } calib_copy_kind;

calib_status calib_cuda_malloc(void** ptr, size_t bytes, char* err);
calib_status calib_cuda_free(void* ptr, char* err);
calib_status calib_cuda_memcpy(void* dst, const void* src, size_t bytes, calib_copy_kind kind, char* err);
calib_status calib_cuda_memset(void* ptr, int value, size_t bytes, char* err);
calib_status calib_cuda_synchronize(char* err);
calib_status calib_cuda_mem_info(size_t* free_bytes, size_t* total_bytes, char* err);

/* Options of the CUDA op that the portable argument struct does not carry. */
typedef struct {
  /* CCE-style gradient tile skipping: a 128×BN tile of the sparse gradient part
   * |softmax − (1−ε)·onehot| whose entries are all below the threshold is left out of
   * both gradient GEMMs; the ε/V smoothing term is applied exactly as a rank-1
   * correction. 0 = off (default, exact); < 0 = auto (2^-12 for bf16, 2^-28 for fp32
   * inputs, CCE's thresholds); > 0 = this threshold. Ignored (dense) with a softcap. */
  float skip_threshold;
  /* Which GEMMs compute the logits and gradients (bf16 inputs):
   * AUTO: cuBLAS when it loads, no tile skipping is asked for and at least a third of the
   *       tokens are valid; else the fused kernels;
   * FUSED: the fused tensor-core kernels (logits only in registers; tile skipping; fp32 always);
   * CUBLAS: bf16 only. On Hopper (D a multiple of 8) our TMA-fed logit kernel keeps the
   *       logits in registers on the way to the statistics and to bf16 gradient blocks, which
   *       cuBLAS turns into dE and dC; elsewhere cuBLAS computes the logits into an fp32 slab.
   *       workspace_bytes sizes the blocks (56 MiB by default). */
  int32_t gemm_impl;
  /* The stream every kernel and copy of the call runs on (a cudaStream_t; NULL = the legacy default stream).
   * The call returns once its work on this stream is done. */
  void* stream;
  /* Caller-provided device scratch (e.g. from PyTorch's allocator): workspace_size bytes at workspace, at least
   * calib_lce_cuda_workspace_size() for the same arguments; NULL = the engine's own arena (kept between calls). */
  void* workspace;
  int64_t workspace_size;
} calib_lce_cuda_options;
enum { CALIB_LCE_GEMM_AUTO = 0, CALIB_LCE_GEMM_FUSED = 1, CALIB_LCE_GEMM_CUBLAS = 2 };

calib_status calib_linear_cross_entropy_cuda(calib_lce_args* args, const calib_lce_cuda_options* options,
                                             char* err /* CALIB_ERRLEN */);

/* Device scratch bytes a call of calib_linear_cross_entropy_cuda with these arguments (device memory) and options
 * may need, whatever its targets (the plan depends on the count of valid tokens, known only on the device): the
 * size to give as options->workspace_size. Pure arithmetic over the shapes, the options and the current device's
 * properties; touches no buffer. */
calib_status calib_lce_cuda_workspace_size(const calib_lce_args* args, const calib_lce_cuda_options* options,
                                           int64_t* bytes, char* err /* CALIB_ERRLEN */);

/* The plan of a CUDA loss call, computed without a GPU: which engine and mode, blocks, splits and scratch
 * for the given device description and count of valid tokens (a device-memory call finds the count on the
 * GPU). Pure arithmetic, defined in every build (CPU-only builds too): the CUDA path runs exactly this plan,
 * so its choices are tested on any machine. */
typedef struct {
  int32_t sms;              /* streaming multiprocessors */
  int32_t cc_major;         /* compute capability major version (9 = Hopper) */
  int32_t blas_available;   /* cuBLAS can be loaded */
} calib_cuda_device_desc;

typedef struct {
  int32_t engine;           /* 0 the fused tensor-core kernels, 1 the logit kernel / cuBLAS engine */
  int32_t mode;             /* 0 forward only, 1 streamed (logits computed twice), 2 chunked (once) */
  int32_t logits;           /* engine 1: 0 an fp32 slab written by cuBLAS, 1 in registers (Hopper logit kernel),
                               2 in registers, kept packed in chunks; engine 0: always in registers (1) */
  int32_t wgmma;            /* engine 0: wgmma kernels (bf16 on Hopper), else mma.sync */
  int32_t splits;           /* vocabulary splits of the statistics pass (0: cuBLAS through the slab) */
  int32_t grad_splits;      /* engine 1, streamed in registers: vocabulary splits of a gradient block */
  int64_t block_rows, block_cols; /* as in calib_cuda_stats */
  int64_t scratch_bytes;    /* device scratch of a device-memory call with this valid count */
  int64_t workspace_bound;  /* the most any valid count needs (calib_lce_cuda_workspace_size) */
} calib_lce_cuda_plan;

calib_status calib_lce_cuda_describe(const calib_lce_args* args, const calib_lce_cuda_options* options,
                                     const calib_cuda_device_desc* device, int64_t valid_count,
                                     calib_lce_cuda_plan* out, char* err /* CALIB_ERRLEN */);

typedef struct {
  int64_t scratch_capacity_bytes; /* device scratch the engine keeps between calls */
  int64_t scratch_peak_bytes;     /* largest scratch a call has needed */
  int64_t last_scratch_bytes;     /* scratch the last call used */
  int32_t last_mode;              /* 0 forward only, 1 streamed (logits recomputed), 2 chunked (logits computed once) */
  int32_t last_splits;            /* vocabulary splits of the logsumexp pass (fused kernels; cuBLAS path: of the
                                     logit kernel, 0 when cuBLAS computed the logits into the fp32 slab) */
  int64_t last_block_rows;        /* streamed: gradient block (cuBLAS: slab) rows; chunked: rows per chunk */
  int64_t last_block_cols;        /* streamed: block (slab) columns; chunked: V (padded; cuBLAS: V) */
  int64_t last_tiles;             /* gradient tiles computed (cuBLAS: gradient blocks) */
  int64_t last_tiles_skipped;     /* of which skipped (tile skipping) */
  int32_t last_gemm;              /* 0 mma.sync, 1 wgmma (bf16 on sm_90), 2 cuBLAS */
  int32_t reserved;
} calib_cuda_stats;

void calib_cuda_get_stats(calib_cuda_stats* stats);
calib_status calib_cuda_release_scratch(char* err);

#ifdef __cplusplus
}
#endif
#endif /* CALIB_H */
