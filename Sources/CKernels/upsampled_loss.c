// The fused bilinear-upsample + softmax cross-entropy, one image at a time, channels last.
//
// The low-resolution logits of one image are kept as [h·w, cp] (classes contiguous, padded to a multiple
// of 16 with AK_PAD_LOGIT), so every per-pixel step — interpolation, max, exp-sum, gradient — is a run of
// whole 16-float vectors over the classes: no gathers, no strided loads. Per output row the two source
// rows are blended once ([w, cp]); each output pixel then blends two columns of that row.
#include "kernels.h"
#include "mathfun.h"

// Helpers are always inlined: a plain static function would be compiled for the baseline CPU only,
// not once per CPU clone of its caller.

/// s[ix, c] = wt · L[top, ix, c] + wb · L[bottom, ix, c] for one output row.
AK_ALWAYS_INLINE void blend_rows(const float *lcl, long w, long cp, const ak_taps *rows, long oy, float *s) {
    const float *top = lcl + rows->lo[oy] * w * cp, *bottom = lcl + rows->hi[oy] * w * cp;
    float wt = rows->wl[oy], wb = rows->wh[oy];
    for (long i = 0; i < w * cp; i++) s[i] = wt * top[i] + wb * bottom[i];
}

/// z[c] = wl · s[lo, c] + wh · s[hi, c] for output column ox; returns max_c z.
AK_ALWAYS_INLINE float interpolate(const float *s, long cp, const ak_taps *cols, long ox, float *z) {
    const float *l = s + cols->lo[ox] * cp, *h = s + cols->hi[ox] * cp;
    float wl = cols->wl[ox], wh = cols->wh[ox];
    float m[AK_LANES];
    for (long i = 0; i < AK_LANES; i++) m[i] = -INFINITY;
    for (long c0 = 0; c0 < cp; c0 += AK_LANES)
        for (long i = 0; i < AK_LANES; i++) {
            float v = wl * l[c0 + i] + wh * h[c0 + i];
            z[c0 + i] = v;
            m[i] = v > m[i] ? v : m[i];
        }
    float best = m[0];
    for (long i = 1; i < AK_LANES; i++) best = m[i] > best ? m[i] : best;
    return best;
}

/// log Σ_c exp(z[c]) given max m (padding lanes add exp(−87.3) ≈ 1e-38 each: nothing in float).
AK_ALWAYS_INLINE float log_sum_exp(const float *z, long cp, float m) {
    float acc[AK_LANES] = {0};
    for (long c0 = 0; c0 < cp; c0 += AK_LANES)
        for (long i = 0; i < AK_LANES; i++) acc[i] += ak_expf(z[c0 + i] - m);
    return m + ak_logf(ak_lanes_sum(acc));
}

AK_CLONES long ak_upsampled_ce_forward(const float *lcl, long w, long classes, long cp, const ak_taps *rows,
                                       const ak_taps *cols, const int32_t *labels, int32_t ignore, float *lse,
                                       double *loss_sum, long *valid, float *scratch) {
    float *s = scratch, *z = scratch + w * cp;
    long W = cols->size, bad = -1;
    for (long oy = 0; oy < rows->size; oy++) {
        blend_rows(lcl, w, cp, rows, oy, s);
        double acc = 0.0;
        long count = 0;
        for (long ox = 0; ox < W; ox++) {
            long p = oy * W + ox;
            float m = interpolate(s, cp, cols, ox, z);
            lse[p] = log_sum_exp(z, cp, m);
            int32_t y = labels[p];
            if (y == ignore) continue;
            if (y < 0 || y >= classes) {
                if (bad < 0) bad = p;
                continue;
            }
            acc += (double)(lse[p] - z[y]);
            count++;
        }
        *loss_sum += acc;
        *valid += count;
    }
    return bad;
}

AK_CLONES void ak_upsampled_ce_backward(const float *lcl, long w, long classes, long cp, const ak_taps *rows,
                                        const ak_taps *cols, const int32_t *labels, int32_t ignore,
                                        const float *lse, float scale, float *gcl, float *scratch) {
    float *s = scratch, *gs = scratch + w * cp, *z = scratch + 2 * w * cp;
    long W = cols->size;
    for (long oy = 0; oy < rows->size; oy++) {
        blend_rows(lcl, w, cp, rows, oy, s);
        for (long i = 0; i < w * cp; i++) gs[i] = 0.0f;
        int any = 0;
        for (long ox = 0; ox < W; ox++) {
            long p = oy * W + ox;
            int32_t y = labels[p];
            if (y == ignore || y < 0 || y >= classes) continue;  // no gradient from ignored pixels
            any = 1;
            interpolate(s, cp, cols, ox, z);
            float lp = lse[p];
            // dz = scale · (softmax − onehot), sent back through the column taps.
            float *gl = gs + cols->lo[ox] * cp, *gh = gs + cols->hi[ox] * cp;
            float wl = scale * cols->wl[ox], wh = scale * cols->wh[ox];
            for (long c = 0; c < cp; c++) {
                float g = ak_expf(z[c] - lp);
                gl[c] += wl * g;
                gh[c] += wh * g;
            }
            gl[y] -= wl;
            gh[y] -= wh;
        }
        if (!any) continue;
        // ... and through the row taps.
        float *top = gcl + rows->lo[oy] * w * cp, *bottom = gcl + rows->hi[oy] * w * cp;
        float wt = rows->wl[oy], wb = rows->wh[oy];
        for (long i = 0; i < w * cp; i++) top[i] += wt * gs[i];
        for (long i = 0; i < w * cp; i++) bottom[i] += wb * gs[i];
    }
}
