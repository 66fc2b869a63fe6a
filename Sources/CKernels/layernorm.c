#include "kernels.h"
#include "mathfun.h"

AK_CLONES void ak_layernorm_forward(const float *x, const float *w, const float *b, float *y, float *mean,
                                    float *rstd, long rows, long cols, float eps) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mu = ak_row_sum(xr, cols) / (float)cols;
        // Two-pass variance (no cancellation for large means), in 16 lanes.
        float acc[AK_LANES] = {0}, tail = 0.0f;
        long j = 0;
        for (; j + AK_LANES <= cols; j += AK_LANES)
            for (int i = 0; i < AK_LANES; i++) {
                float d = xr[j + i] - mu;
                acc[i] += d * d;
            }
        for (; j < cols; j++) tail += (xr[j] - mu) * (xr[j] - mu);
        float v = ak_lanes_sum(acc) + tail;
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
        // Σ ĝ and Σ ĝ·x̂ with ĝ = gy ⊙ w, in 16 lanes.
        float acc_g[AK_LANES] = {0}, acc_gx[AK_LANES] = {0}, sum_g = 0.0f, sum_gx = 0.0f;
        long j = 0;
        for (; j + AK_LANES <= cols; j += AK_LANES)
            for (int i = 0; i < AK_LANES; i++) {
                float g = gr[j + i] * w[j + i];
                acc_g[i] += g;
                acc_gx[i] += g * (xr[j + i] - mu) * rs;
            }
        for (; j < cols; j++) {
            float g = gr[j] * w[j];
            sum_g += g;
            sum_gx += g * (xr[j] - mu) * rs;
        }
        sum_g += ak_lanes_sum(acc_g);
        sum_gx += ak_lanes_sum(acc_gx);
        float mg = sum_g / (float)cols, mgx = sum_gx / (float)cols;
        float *xo = gx + r * cols;
        for (long j = 0; j < cols; j++) {
            float xh = (xr[j] - mu) * rs;
            xo[j] += rs * (gr[j] * w[j] - mg - xh * mgx);
        }
    }
}
