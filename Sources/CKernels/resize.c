// One output row of the NCHW bilinear resize from gathered taps, in AVX-512: the exact operations of
// BilinearAxis.interpolateGathered (Resize.swift) in the same order, every product rounded before its sum.
// Swift vectorises that loop for the baseline target only (4-lane SSE): the 150-class output resize took
// ~12 ms of a ViT-S/224 inference batch against 8.4 ms to write its 241 MB at all. The empty asm statements
// keep clang (-ffp-contract=fast) from fusing a product into the following add as an FMA, which would
// change the bits that the resize-and-argmax path (Inference.argmaxResized) must reproduce.
#include "kernels.h"
#include "mathfun.h"
#include <stdint.h>

#if AK_HAS_AVX512_KERNELS
#define ROUNDED(v) __asm__("" : "+v"(v))

// wa·a + wb·b with both products rounded before the sum (never an FMA): the Swift loops' bits.
AK_AVX512 static inline __attribute__((always_inline)) __m512 blend(__m512 wa, __m512 a, __m512 wb, __m512 b) {
    __m512 p = _mm512_mul_ps(wa, a), q = _mm512_mul_ps(wb, b);
    ROUNDED(p);
    ROUNDED(q);
    return _mm512_add_ps(p, q);
}

// The 16 outputs at out + x of a row of n: streamed past the caches when asked (the row 64-byte aligned, the
// vector full), otherwise a masked store.
AK_AVX512 static inline __attribute__((always_inline)) void store_outputs(float *out, long x, long n, __mmask16 m,
                                                                         int stream, __m512 v) {
    if (stream && x + 16 <= n) _mm512_stream_ps(out + x, v);
    else _mm512_mask_storeu_ps(out + x, m, v);
}

AK_AVX512 void ak_resize_row_gathered(const float *tl, const float *th, const float *bl, const float *bh,
                                      const float *wl, const float *wh, float wt, float wb, float *out, long n,
                                      int stream) {
    __m512 vt = _mm512_set1_ps(wt), vb = _mm512_set1_ps(wb);
    stream = stream && ((uintptr_t)out & 63) == 0;
    for (long x = 0; x < n; x += 16) {
        __mmask16 m = ak_lane_mask(n, x);
        __m512 low = blend(vt, _mm512_maskz_loadu_ps(m, tl + x), vb, _mm512_maskz_loadu_ps(m, bl + x));
        __m512 high = blend(vt, _mm512_maskz_loadu_ps(m, th + x), vb, _mm512_maskz_loadu_ps(m, bh + x));
        store_outputs(out, x, n, m, stream,
                      blend(_mm512_maskz_loadu_ps(m, wl + x), low, _mm512_maskz_loadu_ps(m, wh + x), high));
    }
}

// One output row for input rows of ≤ 32 floats: the two source rows blended once (wt·top + wb·bottom, each
// product rounded) into two registers, then each output's two taps picked from them (vpermt2ps) — the
// blend-first arithmetic of BilinearAxis.interpolateRow in the same order, so the same bits, without the
// gathered copy of the taps (a scalar pass of its own, 0.7 % of ViT-Ti/512 inference) and with 2 products per
// output instead of 6.
AK_AVX512 void ak_resize_row_permuted(const float *top, const float *bottom, long in_w, float wt, float wb,
                                      const int32_t *lo, const int32_t *hi, const float *wl, const float *wh,
                                      float *out, long n, int stream) {
    __m512 vt = _mm512_set1_ps(wt), vb = _mm512_set1_ps(wb);
    __mmask16 k0 = ak_lane_mask(in_w, 0), k1 = ak_lane_mask(in_w, 16);
    __m512 row0 = blend(vt, _mm512_maskz_loadu_ps(k0, top), vb, _mm512_maskz_loadu_ps(k0, bottom));
    __m512 row1 = blend(vt, _mm512_maskz_loadu_ps(k1, top + 16), vb, _mm512_maskz_loadu_ps(k1, bottom + 16));
    stream = stream && ((uintptr_t)out & 63) == 0;
    for (long x = 0; x < n; x += 16) {
        __mmask16 m = ak_lane_mask(n, x);
        __m512 l = _mm512_permutex2var_ps(row0, _mm512_maskz_loadu_epi32(m, lo + x), row1);
        __m512 h = _mm512_permutex2var_ps(row0, _mm512_maskz_loadu_epi32(m, hi + x), row1);
        store_outputs(out, x, n, m, stream, blend(_mm512_maskz_loadu_ps(m, wl + x), l, _mm512_maskz_loadu_ps(m, wh + x), h));
    }
}

void ak_store_fence(void) { _mm_sfence(); }
#else
void ak_resize_row_gathered(const float *tl, const float *th, const float *bl, const float *bh, const float *wl,
                            const float *wh, float wt, float wb, float *out, long n, int stream) {
    (void)tl, (void)th, (void)bl, (void)bh, (void)wl, (void)wh, (void)wt, (void)wb, (void)out, (void)n, (void)stream;
}

void ak_resize_row_permuted(const float *top, const float *bottom, long in_w, float wt, float wb,
                            const int32_t *lo, const int32_t *hi, const float *wl, const float *wh,
                            float *out, long n, int stream) {
    (void)top, (void)bottom, (void)in_w, (void)wt, (void)wb, (void)lo, (void)hi, (void)wl, (void)wh, (void)out,
        (void)n, (void)stream;
}

void ak_store_fence(void) {}
#endif
