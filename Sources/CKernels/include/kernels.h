// CKernels — the engine's hot float loops, compiled at -O3 with one clone per CPU family
// (AVX-512 / AVX2 / baseline, picked at load time), so they are fast even in debug builds.
//
// Conventions: `rows × cols` row-major matrices; every *_backward ACCUMULATES (+=) into its
// gradient outputs, so the caller owns zero-initialisation; functions work on the slice they are
// given so Swift can split them across threads.
#ifndef ADAROUTE_KERNELS_H
#define ADAROUTE_KERNELS_H

#include <stdint.h>

// ---- GELU (exact erf form and tanh form) -------------------------------------------------
void ak_gelu_erf_forward(const float *x, float *y, long n);
void ak_gelu_erf_backward(const float *x, const float *gy, float *gx, long n);
void ak_gelu_tanh_forward(const float *x, float *y, long n);
void ak_gelu_tanh_backward(const float *x, const float *gy, float *gx, long n);
void ak_exp(const float *x, float *y, long n);
void ak_sigmoid(const float *x, float *y, long n);

// ---- linear layers: y = act(x·Wᵀ + b) + r with W packed in 48-column panels (linear_gemm.c) ---
/// Non-zero when the CPU runs the packed kernel (AVX-512); otherwise callers use BLAS.
int ak_linear_available(void);
/// Output columns per packed panel (the kernel's tile width).
#define AK_LINEAR_PANEL 48
long ak_linear_panel_count(long n);
/// Floats of packed panels for an [n, k] weight: panel_count(n)·k·AK_LINEAR_PANEL.
long ak_linear_packed_size(long n, long k);
/// Packs panels panel_begin..<panel_end of scale·W (W [n, k], row stride ldw) into `packed`
/// (ak_linear_packed_size floats, 64-byte aligned).
void ak_linear_pack(const float *w, long ldw, long n, long k, float scale, float *packed, long panel_begin,
                    long panel_end);
/// Elements begin..<end of out[s] = Σ_e weights[s·experts + e]·bank[e] for every sample s < samples, where bank[e]
/// and out[s] are `stride` floats apart: AdaRoute's mixed expert weights, mixed in the packed layout.
void ak_linear_mix(const float *bank, long stride, long experts, long samples, const float *weights, float *out,
                   long begin, long end);
/// Rows row_begin..<row_end of y = act(x·Wᵀ + bias) + residual; bias/residual may be NULL, gelu: 0 none, 1 erf.
void ak_linear_rows(long n, long k, const float *x, long ldx, const float *packed, const float *bias,
                    const float *residual, long ldr, float *y, long ldy, int gelu, long row_begin,
                    long row_end);

// ---- bilinear resize (resize.c) --------------------------------------------------------------
/// out[x] = wl[x]·(wt·tl[x] + wb·bl[x]) + wh[x]·(wt·th[x] + wb·bh[x]) for x < n, each operation rounded in this
/// order (the same bits as Resize.swift's interpolateGathered). Needs ak_linear_available(). With `stream`, a
/// 64-byte aligned row is written with non-temporal stores (call ak_store_fence before other threads read it).
void ak_resize_row_gathered(const float *tl, const float *th, const float *bl, const float *bh, const float *wl,
                            const float *wh, float wt, float wb, float *out, long n, int stream);
/// The same row for source rows of in_w ≤ 32 floats, blended first and sampled from registers: out[x] =
/// wl[x]·b[lo[x]] + wh[x]·b[hi[x]] with b = wt·top + wb·bottom (BilinearAxis.interpolateRow's blend-first bits).
void ak_resize_row_permuted(const float *top, const float *bottom, long in_w, float wt, float wb,
                            const int32_t *lo, const int32_t *hi, const float *wl, const float *wh,
                            float *out, long n, int stream);
/// Orders this thread's non-temporal stores before its later stores (sfence).
void ak_store_fence(void);

// ---- attention of one (sample, head) pair, no graph (attention.c) --------------------------------
/// Non-zero when ak_attention_pair runs for this head width (≤ 64, AVX-512).
int ak_attention_supports(long head_width);
/// Floats of scratch ak_attention_pair needs (one buffer per concurrent call).
long ak_attention_scratch_size(long tokens, long head_width);
/// row[j] = exp(row[j] − m) (every row[j] ≤ m) for j < n; returns their sum. The kernel's softmax exponentials:
/// relative error ≤ 3e-7 + 5e-8·|t|, t = (row[j] − m)·log2(e) (MathKernelTests). Needs ak_attention_supports.
float ak_attention_exp_sum(float *row, long n, float m);
/// out [tokens, head_width] (row stride ldo) = softmax(q·kᵀ·scale)·v; q, k, v: [tokens, head_width], row stride ld.
void ak_attention_pair(const float *q, const float *k, const float *v, long ld, long tokens, long head_width,
                       float scale, float *out, long ldo, float *scratch);

// ---- softmax / log-softmax over the last axis ---------------------------------------------
void ak_softmax_forward(const float *x, float *y, long rows, long cols);
/// gx += y ⊙ (gy − Σ gy⊙y)
void ak_softmax_backward(const float *y, const float *gy, float *gx, long rows, long cols);
void ak_log_softmax_forward(const float *x, float *y, long rows, long cols);
/// gx += gy − exp(y)·Σ gy
void ak_log_softmax_backward(const float *y, const float *gy, float *gx, long rows, long cols);

// ---- LayerNorm over the last axis (biased variance) ---------------------------------------
/// mean/rstd: one per row, saved for the backward.
void ak_layernorm_forward(const float *x, const float *w, const float *b, float *y, float *mean,
                          float *rstd, long rows, long cols, float eps);
/// gx += …; gw += Σ_rows gy⊙x̂; gb += Σ_rows gy. Any of gx/gw/gb may be NULL.
void ak_layernorm_backward(const float *x, const float *w, const float *mean, const float *rstd,
                           const float *gy, float *gx, float *gw, float *gb, long rows, long cols);

// ---- pixel-wise softmax cross-entropy on one (classes × plane) image -----------------------
/// Pixels p0..<p1 of logits[c * plane + p]. Writes lse[p] (log-sum-exp, saved for the backward),
/// adds the loss of valid pixels to *loss_sum and their count to *valid. label == ignore is skipped;
/// returns the first pixel whose label is outside 0..<classes (and not ignore), or -1.
long ak_cross_entropy_forward(const float *logits, const int32_t *labels, float *lse, long classes,
                              long plane, long p0, long p1, int32_t ignore, double *loss_sum,
                              long *valid);
/// glogits[c, p] += scale · (softmax − onehot) for valid pixels p0..<p1.
void ak_cross_entropy_backward(const float *logits, const int32_t *labels, const float *lse,
                               float *glogits, long classes, long plane, long p0, long p1,
                               int32_t ignore, float scale);

// ---- bilinear upsample + softmax cross-entropy, fused (upsampled_loss.c) ---------------------
/// The taps of one bilinear axis (BilinearAxis): output d reads inputs lo[d], hi[d] with weights wl[d], wh[d].
typedef struct { const long *lo, *hi; const float *wl, *wh; long size; } ak_taps;
/// Padding value for the classes cp − C of channels-last logits (exp of it is ~0; 0 · it is 0).
#define AK_PAD_LOGIT (-1e30f)
/// One image: lcl [h·w, cp] logits, classes last, padded to cp (a multiple of 16) with AK_PAD_LOGIT;
/// the output is rows->size × cols->size pixels with labels [H·W]. Writes lse [H·W], adds the loss of
/// valid pixels to *loss_sum and their count to *valid; returns the first bad pixel or -1.
/// scratch: (w + 1)·cp floats.
long ak_upsampled_ce_forward(const float *lcl, long w, long classes, long cp, const ak_taps *rows,
                             const ak_taps *cols, const int32_t *labels, int32_t ignore, float *lse,
                             double *loss_sum, long *valid, float *scratch);
/// gcl [h·w, cp] += scale · d(Σ loss)/d lcl. scratch: (2w + 1)·cp floats.
void ak_upsampled_ce_backward(const float *lcl, long w, long classes, long cp, const ak_taps *rows,
                              const ak_taps *cols, const int32_t *labels, int32_t ignore,
                              const float *lse, float scale, float *gcl, float *scratch);

// ---- process set-up ----------------------------------------------------------------------
/// glibc: keep large freed blocks for reuse instead of unmapping them (no page-fault storm per step).
void ak_tune_allocator(void);

// ---- thread pool (threadpool.c) -------------------------------------------------------------
typedef void (*ak_task_fn)(void *ctx, long piece);
/// Runs fn(ctx, 0..<pieces) on up to `threads` threads (the caller included) and returns when all
/// are done. Called from inside a piece, it runs the pieces inline.
void ak_pool_run(long pieces, int threads, ak_task_fn fn, void *ctx);
/// 1 on a thread that is running a piece (its own parallel loops and GEMMs then run inline).
int ak_pool_inside_job(void);

#endif
