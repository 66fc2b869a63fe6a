// The linear layers' GEMM, y = act(x·Wᵀ + b) + r, with the bias, activation and residual applied to each
// output tile while it is still in registers. Through OpenBLAS the same layer costs a pass that fills y with
// b (or r + b) before a beta-1 GEMM, and a separate pass for the activation; those passes (and the zeroing
// for beta 0) were ~10 % of ViT-Ti inference samples (perf). On the ViT layer shapes the kernel itself runs at 204–224 GFLOP/s on 2 Zen 4
// threads against 180–194 for OpenBLAS with its bias fill, the FMA peak being 235 (scripts/gemm_limits.c):
// x is read in place (no packing of the activations) and W's panels can be packed once (PackedGEMM).
//
// Layout: W [n, k] row-major is packed into panels of 48 output columns, panel p holding
// W[p·48 + j, kk] at ((p·k) + kk)·48 + j, zero-padded past n. A tile is 8 rows × 48 columns: 24 zmm
// accumulators, 3 vector loads of the panel and 8 broadcasts of x per step of k.
#include "kernels.h"
#include "mathfun.h"

#define NR AK_LINEAR_PANEL
#define MR 8

long ak_linear_panel_count(long n) { return (n + NR - 1) / NR; }
long ak_linear_packed_size(long n, long k) { return ak_linear_panel_count(n) * k * NR; }

#if AK_HAS_AVX512_KERNELS
// A 16×16 block transposed in registers (unpack, in-lane shuffle, two 128-bit lane shuffles).
AK_AVX512 static inline void transpose16(__m512 *r) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

// Each panel in 16×16 blocks transposed in registers: rows past n and k-columns past k load as zeros, which
// is the panel's padding. Against scalar copies in cache-sized blocks (one thread, 2026-12-07): attention's k
// (packed once per head) 7.6 → 2.7 µs at 197×64 and 35 → 9 µs at 1025×64; a 1152×384 weight 233 → 100 µs
// (a training step packs every weight on every call).
AK_AVX512 void ak_linear_pack(const float *w, long ldw, long n, long k, float scale, float *packed, long panel_begin,
                              long panel_end) {
    __m512 vs = _mm512_set1_ps(scale), zero = _mm512_setzero_ps();
    for (long p = panel_begin; p < panel_end; p++) {
        float *dst = packed + p * k * NR;
        long rows = n - p * NR < NR ? n - p * NR : NR;
        const float *src = w + p * NR * ldw;
        for (long k0 = 0; k0 < k; k0 += 16) {
            __mmask16 mk = ak_lane_mask(k, k0);
            long columns = k - k0 < 16 ? k - k0 : 16;
            for (long j0 = 0; j0 < NR; j0 += 16) {
                __m512 r[16];
                for (long i = 0; i < 16; i++)
                    r[i] = j0 + i < rows ? _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(mk, src + (j0 + i) * ldw + k0)) : zero;
                transpose16(r);
                for (long i = 0; i < columns; i++) _mm512_store_ps(dst + (k0 + i) * NR + j0, r[i]);
            }
        }
    }
}
#else
void ak_linear_pack(const float *w, long ldw, long n, long k, float scale, float *packed, long panel_begin,
                    long panel_end) {
    for (long p = panel_begin; p < panel_end; p++) {
        float *dst = packed + p * k * NR;
        long rows = n - p * NR < NR ? n - p * NR : NR;
        for (long kk = 0; kk < k; kk++)
            for (long j = 0; j < NR; j++) dst[kk * NR + j] = j < rows ? scale * w[(p * NR + j) * ldw + kk] : 0.0f;
    }
}
#endif

// AdaRoute's per-sample weights, mixed after packing: packing is a permutation (zero-padded), so mixing the
// experts' packed panels gives the mixed weight's panels, and no per-sample pack is needed. Blocks of 256
// floats: each block of the E experts (12 KB for 12) is read from memory once and stays in L1 for every sample.
AK_AVX512 void ak_linear_mix(const float *bank, long stride, long experts, long samples, const float *weights,
                             float *out, long begin, long end) {
    for (long i0 = begin; i0 < end; i0 += 256) {
        long i1 = i0 + 256 < end ? i0 + 256 : end;
        for (long s = 0; s < samples; s++) {
            const float *w = weights + s * experts;
            float *o = out + s * stride;
            if (experts <= 0) {
                for (long i = i0; i < i1; i++) o[i] = 0;
                continue;
            }
            for (long i = i0; i < i1; i++) o[i] = w[0] * bank[i];
            for (long e = 1; e < experts; e++) {
                const float *b = bank + e * stride;
                for (long i = i0; i < i1; i++) o[i] += w[e] * b[i];
            }
        }
    }
}

#if AK_HAS_AVX512_KERNELS
int ak_linear_available(void) { return __builtin_cpu_supports("avx512f"); }

AK_AVX512 static inline __m512 gelu16(__m512 v) {
    float t[16];
    _mm512_storeu_ps(t, v);
    for (int i = 0; i < 16; i++) t[i] = ak_gelu_erf(t[i]);
    return _mm512_loadu_ps(t);
}

// The epilogue of one tile row: bias, activation, residual, masked store.
AK_AVX512 static inline __attribute__((always_inline)) void finish_row(
    __m512 v0, __m512 v1, __m512 v2, __m512 c0, __m512 c1, __m512 c2, const float *r, float *o, __mmask16 m0,
    __mmask16 m1, __mmask16 m2, int gelu) {
    v0 = _mm512_add_ps(v0, c0), v1 = _mm512_add_ps(v1, c1), v2 = _mm512_add_ps(v2, c2);
    if (gelu) v0 = gelu16(v0), v1 = gelu16(v1), v2 = gelu16(v2);
    if (r) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, r));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, r + 16));
        v2 = _mm512_add_ps(v2, _mm512_maskz_loadu_ps(m2, r + 32));
    }
    _mm512_mask_storeu_ps(o, m0, v0);
    _mm512_mask_storeu_ps(o + 16, m1, v1);
    _mm512_mask_storeu_ps(o + 32, m2, v2);
}

// One tile of `rows` ≤ MR rows and `vecs` ≤ 3 vectors of 16 columns; both are constants at every call site,
// so each case is unrolled (a last panel of ≤ 16 or ≤ 32 columns — attention's 197 keys — skips the rest).
// The accumulators are named variables, not an array: clang kept an array on the stack (memset per tile).
#define TILE_ACC(i) __m512 a##i##0 = _mm512_setzero_ps(), a##i##1 = a##i##0, a##i##2 = a##i##0;
#define TILE_STEP(i)                                                                                     \
    if (rows > i) {                                                                                      \
        __m512 s = _mm512_set1_ps(x[i * ldx + kk]);                                                      \
        a##i##0 = _mm512_fmadd_ps(s, b0, a##i##0);                                                       \
        if (vecs > 1) a##i##1 = _mm512_fmadd_ps(s, b1, a##i##1);                                         \
        if (vecs > 2) a##i##2 = _mm512_fmadd_ps(s, b2, a##i##2);                                         \
    }
#define TILE_FINISH(i)                                                                                   \
    if (rows > i) finish_row(a##i##0, a##i##1, a##i##2, c0, c1, c2, residual ? residual + i * ldr : 0,   \
                             y + i * ldy, m0, m1, m2, gelu);

AK_AVX512 static inline __attribute__((always_inline)) void tile(
    const int rows, const int vecs, long k, const float *x, long ldx, const float *panel, const float *bias,
    const float *residual, long ldr, float *y, long ldy, __mmask16 m0, __mmask16 m1, __mmask16 m2, int gelu) {
    TILE_ACC(0) TILE_ACC(1) TILE_ACC(2) TILE_ACC(3) TILE_ACC(4) TILE_ACC(5) TILE_ACC(6) TILE_ACC(7)
    for (long kk = 0; kk < k; kk++) {
        const float *b = panel + kk * NR;
        __m512 b0 = _mm512_load_ps(b);
        __m512 b1 = vecs > 1 ? _mm512_load_ps(b + 16) : b0, b2 = vecs > 2 ? _mm512_load_ps(b + 32) : b0;
        TILE_STEP(0) TILE_STEP(1) TILE_STEP(2) TILE_STEP(3) TILE_STEP(4) TILE_STEP(5) TILE_STEP(6) TILE_STEP(7)
    }
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0;
    if (bias) c0 = _mm512_maskz_loadu_ps(m0, bias), c1 = _mm512_maskz_loadu_ps(m1, bias + 16), c2 = _mm512_maskz_loadu_ps(m2, bias + 32);
    TILE_FINISH(0) TILE_FINISH(1) TILE_FINISH(2) TILE_FINISH(3) TILE_FINISH(4) TILE_FINISH(5) TILE_FINISH(6) TILE_FINISH(7)
}

#define ROW_BLOCK 64 // rows of x per sweep over the panels: 64·k floats stay in L2

AK_AVX512 void ak_linear_rows(long n, long k, const float *x, long ldx, const float *packed, const float *bias,
                           const float *residual, long ldr, float *y, long ldy, int gelu, long row_begin,
                           long row_end) {
    long panels = ak_linear_panel_count(n);
    for (long r0 = row_begin; r0 < row_end; r0 += ROW_BLOCK) {
        long r1 = r0 + ROW_BLOCK < row_end ? r0 + ROW_BLOCK : row_end;
        for (long p = 0; p < panels; p++) {
            long col = p * NR, width = n - col < NR ? n - col : NR;
            __mmask16 m0 = ak_lane_mask(width, 0), m1 = ak_lane_mask(width, 16), m2 = ak_lane_mask(width, 32);
            const int vecs = (int)((width + 15) / 16);
            const float *panel = packed + p * k * NR, *b = bias ? bias + col : 0;
            for (long i = r0; i < r1; i += MR) {
                const float *xi = x + i * ldx, *ri = residual ? residual + i * ldr + col : 0;
                float *yi = y + i * ldy + col;
#define TILE_ARGS k, xi, ldx, panel, b, ri, ldr, yi, ldy, m0, m1, m2, gelu
                long rows = r1 - i < MR ? r1 - i : MR;
                if (rows == MR) {
                    if (vecs == 3) tile(8, 3, TILE_ARGS);
                    else if (vecs == 2) tile(8, 2, TILE_ARGS);
                    else tile(8, 1, TILE_ARGS);
                    continue;
                }
                switch (rows) { // a short last tile: all three vectors (masked)
                case 7: tile(7, 3, TILE_ARGS); break;
                case 6: tile(6, 3, TILE_ARGS); break;
                case 5: tile(5, 3, TILE_ARGS); break;
                case 4: tile(4, 3, TILE_ARGS); break;
                case 3: tile(3, 3, TILE_ARGS); break;
                case 2: tile(2, 3, TILE_ARGS); break;
                default: tile(1, 3, TILE_ARGS); break;
                }
#undef TILE_ARGS
            }
        }
    }
}
#else
int ak_linear_available(void) { return 0; }
void ak_linear_rows(long n, long k, const float *x, long ldx, const float *packed, const float *bias,
                    const float *residual, long ldr, float *y, long ldy, int gelu, long row_begin, long row_end) {
    (void)n, (void)k, (void)x, (void)ldx, (void)packed, (void)bias, (void)residual, (void)ldr, (void)y, (void)ldy,
        (void)gelu, (void)row_begin, (void)row_end;
}
#endif
