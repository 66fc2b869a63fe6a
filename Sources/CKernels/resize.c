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

AK_AVX512 void ak_resize_row_gathered(const float *tl, const float *th, const float *bl, const float *bh,
                                      const float *wl, const float *wh, float wt, float wb, float *out, long n,
                                      int stream) {
    __m512 vt = _mm512_set1_ps(wt), vb = _mm512_set1_ps(wb);
    stream = stream && ((uintptr_t)out & 63) == 0;
    for (long x = 0; x < n; x += 16) {
        __mmask16 m = ak_lane_mask(n, x);
        __m512 a = _mm512_mul_ps(vt, _mm512_maskz_loadu_ps(m, tl + x));
        __m512 b = _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, bl + x));
        ROUNDED(a);
        ROUNDED(b);
        __m512 low = _mm512_add_ps(a, b);
        __m512 c = _mm512_mul_ps(vt, _mm512_maskz_loadu_ps(m, th + x));
        __m512 d = _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, bh + x));
        ROUNDED(c);
        ROUNDED(d);
        __m512 high = _mm512_add_ps(c, d);
        __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, wl + x), low);
        __m512 q = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, wh + x), high);
        ROUNDED(p);
        ROUNDED(q);
        if (stream && x + 16 <= n) _mm512_stream_ps(out + x, _mm512_add_ps(p, q));
        else _mm512_mask_storeu_ps(out + x, m, _mm512_add_ps(p, q));
    }
}

void ak_store_fence(void) { _mm_sfence(); }
#else
void ak_resize_row_gathered(const float *tl, const float *th, const float *bl, const float *bh, const float *wl,
                            const float *wh, float wt, float wb, float *out, long n, int stream) {
    (void)tl, (void)th, (void)bl, (void)bh, (void)wl, (void)wh, (void)wt, (void)wb, (void)out, (void)n, (void)stream;
}

void ak_store_fence(void) {}
#endif
