#include "kernels.h"
#include "mathfun.h"

AK_CLONES void ak_layernorm_forward(const float *x, const float *w, const float *b, float *y, float *mean,
                                    float *rstd, long rows, long cols, float eps) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float s = 0.0f;
        for (long j = 0; j < cols; j++) s += xr[j];
        float mu = s / (float)cols;
        float v = 0.0f; // two-pass variance: no cancellation for large means
        for (long j = 0; j < cols; j++) {
            float d = xr[j] - mu;
            v += d * d;
        }
        float rs = 1.0f / sqrtf(v / (float)cols + eps);
        for (long j = 0; j < cols; j++) yr[j] = (xr[j] - mu) * rs * w[j] + b[j];
        mean[r] = mu;
        rstd[r] = rs;
    }
}

AK_CLONES void ak_layernorm_backward(const float *x, const float *w, const float *mean, const float *rstd,
                                     const float *gy, float *gx, float *gw, float *gb, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *gr = gy + r * cols;
        float mu = mean[r], rs = rstd[r];
        if (gw || gb) {
            for (long j = 0; j < cols; j++) {
                float xh = (xr[j] - mu) * rs;
                if (gw) gw[j] += gr[j] * xh;
                if (gb) gb[j] += gr[j];
            }
        }
        if (!gx) continue;
        float sum_g = 0.0f, sum_gx = 0.0f; // Σ ĝ and Σ ĝ·x̂ with ĝ = gy ⊙ w
        for (long j = 0; j < cols; j++) {
            float g = gr[j] * w[j];
            sum_g += g;
            sum_gx += g * (xr[j] - mu) * rs;
        }
        float mg = sum_g / (float)cols, mgx = sum_gx / (float)cols;
        float *xo = gx + r * cols;
        for (long j = 0; j < cols; j++) {
            float xh = (xr[j] - mu) * rs;
            xo[j] += rs * (gr[j] * w[j] - mg - xh * mgx);
        }
    }
}
