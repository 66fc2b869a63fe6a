// Scaled-dot-product attention of one (sample, head) pair without a graph (inference), by blocks of query
// rows: S = q·(scale·k)ᵀ for QUERY_BLOCK rows (linear_gemm.c's kernel, k packed once per pair),
// exponentials in place, then O = E·v with the softmax's 1/Σ applied in the tile epilogue. Through
// OpenBLAS the pair cost a full N × N matrix written and read three times (GEMM, softmax, GEMM), a
// normalisation pass, and a repacking of P inside the second GEMM: at ViT-Ti 512² (N = 1025) softmax and
// packing were ~12 % of inference samples (perf); this kernel took the step from 1.118 to 1.07 s.
#include "kernels.h"
#include "mathfun.h"

#define QUERY_BLOCK 32 // rows of S per block: 32·N floats stay in L2 next to packed k and v

long ak_attention_scratch_size(long tokens, long head_width) {
    long floats = ak_linear_packed_size(tokens, head_width) + QUERY_BLOCK * tokens + QUERY_BLOCK;
    return (floats + 15) & ~15L; // consecutive buffers stay 64-byte aligned (the packed panels need it)
}

#if AK_HAS_AVX512_KERNELS
int ak_attention_supports(long head_width) { return head_width >= 1 && head_width <= 64 && ak_linear_available(); }

// O rows (≤ 6) = E rows · v, each row scaled by its 1/Σ. v's 64 columns are four vectors loaded straight
// from qkv (masked past head_width), so v needs no packing.
#define PV_ROWS 6
#define PV_ACC(i) __m512 a##i##0 = _mm512_setzero_ps(), a##i##1 = a##i##0, a##i##2 = a##i##0, a##i##3 = a##i##0;
#define PV_STEP(i)                                                                                       \
    if (rows > i) {                                                                                      \
        __m512 s = _mm512_set1_ps(e[i * lde + j]);                                                       \
        a##i##0 = _mm512_fmadd_ps(s, v0, a##i##0);                                                       \
        a##i##1 = _mm512_fmadd_ps(s, v1, a##i##1);                                                       \
        a##i##2 = _mm512_fmadd_ps(s, v2, a##i##2);                                                       \
        a##i##3 = _mm512_fmadd_ps(s, v3, a##i##3);                                                       \
    }
#define PV_STORE(i)                                                                                      \
    if (rows > i) {                                                                                      \
        __m512 r = _mm512_set1_ps(inv_sum[i]);                                                           \
        float *o = out + i * ldo;                                                                        \
        _mm512_mask_storeu_ps(o, m0, _mm512_mul_ps(a##i##0, r));                                         \
        _mm512_mask_storeu_ps(o + 16, m1, _mm512_mul_ps(a##i##1, r));                                    \
        _mm512_mask_storeu_ps(o + 32, m2, _mm512_mul_ps(a##i##2, r));                                    \
        _mm512_mask_storeu_ps(o + 48, m3, _mm512_mul_ps(a##i##3, r));                                    \
    }

AK_AVX512 static inline __attribute__((always_inline)) void pv_tile(
    const int rows, long tokens, const float *e, long lde, const float *inv_sum, const float *v, long ldv,
    float *out, long ldo, __mmask16 m0, __mmask16 m1, __mmask16 m2, __mmask16 m3) {
    PV_ACC(0) PV_ACC(1) PV_ACC(2) PV_ACC(3) PV_ACC(4) PV_ACC(5)
    for (long j = 0; j < tokens; j++) {
        const float *vj = v + j * ldv;
        __m512 v0 = _mm512_maskz_loadu_ps(m0, vj), v1 = _mm512_maskz_loadu_ps(m1, vj + 16);
        __m512 v2 = _mm512_maskz_loadu_ps(m2, vj + 32), v3 = _mm512_maskz_loadu_ps(m3, vj + 48);
        PV_STEP(0) PV_STEP(1) PV_STEP(2) PV_STEP(3) PV_STEP(4) PV_STEP(5)
    }
    PV_STORE(0) PV_STORE(1) PV_STORE(2) PV_STORE(3) PV_STORE(4) PV_STORE(5)
}

// row[j] = exp(row[j] − m) for j < n, returning their sum: exp as 2^t with t = (x − m)·log2(e) ≤ 0 split into
// round(t) + f, 2^f by its degree-6 Taylor polynomial (relative error 1.2e-7 on |f| ≤ ½) and 2^round(t) by
// vscalefps. No Cody–Waite step: the rounding of t adds a relative error of up to ~5e-8·|t| (MathKernelTests),
// largest where the term is negligible (t = −20: 1e-6 of a 1e-6 weight). Cheaper than ak_expf, whose pass was
// 14–16 % of this kernel: 85 → 89 GFLOP/s at 197 tokens, 95.5 → 99.6 at 1025 (scripts/attention_kernel.c).
AK_AVX512 float ak_attention_exp_sum(float *row, long n, float m) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f), shift = _mm512_set1_ps(-m * 1.44269504088896341f);
    const __m512 floor_t = _mm512_set1_ps(-126.0f);
    const __m512 c1 = _mm512_set1_ps(0.693147180559945f), c2 = _mm512_set1_ps(0.240226506959101f),
                 c3 = _mm512_set1_ps(0.0555041086648216f), c4 = _mm512_set1_ps(0.00961812910762848f),
                 c5 = _mm512_set1_ps(0.00133335581464284f), c6 = _mm512_set1_ps(0.000154035303933816f),
                 one = _mm512_set1_ps(1.0f);
    __m512 sum = _mm512_setzero_ps();
    for (long j = 0; j < n; j += 16) {
        __mmask16 k = ak_lane_mask(n, j);
        __m512 t = _mm512_max_ps(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, row + j), log2e, shift), floor_t);
        __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 f = _mm512_sub_ps(t, r);
        __m512 p = _mm512_fmadd_ps(c6, f, c5);
        p = _mm512_fmadd_ps(p, f, c4);
        p = _mm512_fmadd_ps(p, f, c3);
        p = _mm512_fmadd_ps(p, f, c2);
        p = _mm512_fmadd_ps(p, f, c1);
        p = _mm512_fmadd_ps(p, f, one);
        __m512 e = _mm512_scalef_ps(p, r);
        _mm512_mask_storeu_ps(row + j, k, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(sum);
}

AK_AVX512 void ak_attention_pair(const float *q, const float *k, const float *v, long ld, long tokens,
                                 long head_width, float scale, float *out, long ldo, float *scratch) {
    float *packed = scratch, *e = packed + ak_linear_packed_size(tokens, head_width), *inv_sum = e + QUERY_BLOCK * tokens;
    ak_linear_pack(k, ld, tokens, head_width, scale, packed, 0, ak_linear_panel_count(tokens));
    __mmask16 m0 = ak_lane_mask(head_width, 0), m1 = ak_lane_mask(head_width, 16), m2 = ak_lane_mask(head_width, 32),
              m3 = ak_lane_mask(head_width, 48);
    for (long r0 = 0; r0 < tokens; r0 += QUERY_BLOCK) {
        long rows = tokens - r0 < QUERY_BLOCK ? tokens - r0 : QUERY_BLOCK;
        ak_linear_rows(tokens, head_width, q + r0 * ld, ld, packed, 0, 0, 0, e, tokens, 0, 0, rows);
        for (long i = 0; i < rows; i++) {
            float *row = e + i * tokens;
            inv_sum[i] = 1.0f / ak_attention_exp_sum(row, tokens, ak_row_max(row, tokens));
        }
        for (long i = 0; i < rows; i += PV_ROWS) {
            const float *ei = e + i * tokens, *si = inv_sum + i;
            float *oi = out + (r0 + i) * ldo;
            switch (rows - i < PV_ROWS ? rows - i : PV_ROWS) {
            case 6: pv_tile(6, tokens, ei, tokens, si, v, ld, oi, ldo, m0, m1, m2, m3); break;
            case 5: pv_tile(5, tokens, ei, tokens, si, v, ld, oi, ldo, m0, m1, m2, m3); break;
            case 4: pv_tile(4, tokens, ei, tokens, si, v, ld, oi, ldo, m0, m1, m2, m3); break;
            case 3: pv_tile(3, tokens, ei, tokens, si, v, ld, oi, ldo, m0, m1, m2, m3); break;
            case 2: pv_tile(2, tokens, ei, tokens, si, v, ld, oi, ldo, m0, m1, m2, m3); break;
            default: pv_tile(1, tokens, ei, tokens, si, v, ld, oi, ldo, m0, m1, m2, m3); break;
            }
        }
    }
}
#else
int ak_attention_supports(long head_width) { (void)head_width; return 0; }
float ak_attention_exp_sum(float *row, long n, float m) { (void)row, (void)n, (void)m; return 0.0f; }
void ak_attention_pair(const float *q, const float *k, const float *v, long ld, long tokens, long head_width,
                       float scale, float *out, long ldo, float *scratch) {
    (void)q, (void)k, (void)v, (void)ld, (void)tokens, (void)head_width, (void)scale, (void)out, (void)ldo,
        (void)scratch;
}
#endif
