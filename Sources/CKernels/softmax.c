#include "kernels.h"
#include "mathfun.h"

/// y[j] = exp(x[j] − m) for one row; returns Σ y (16 lanes, see ak_row_sum). y may be x (in place):
/// each block of 16 is loaded before it is stored, so the compiler can vectorise despite the aliasing.
AK_ALWAYS_INLINE float exp_shifted_sum(const float *x, float *y, long n, float m) {
    float acc[AK_LANES] = {0}, block[AK_LANES];
    long j = 0;
    for (; j + AK_LANES <= n; j += AK_LANES) {
        for (int i = 0; i < AK_LANES; i++) block[i] = ak_expf(x[j + i] - m);
        for (int i = 0; i < AK_LANES; i++) {
            y[j + i] = block[i];
            acc[i] += block[i];
        }
    }
    float tail = 0.0f;
    for (; j < n; j++) {
        float e = ak_expf(x[j] - m);
        y[j] = e;
        tail += e;
    }
    return ak_lanes_sum(acc) + tail;
}

AK_CLONES void ak_softmax_forward(const float *x, float *y, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float s = exp_shifted_sum(xr, yr, cols, ak_row_max(xr, cols));
        float inv = 1.0f / s;
        for (long j = 0; j < cols; j++) yr[j] *= inv;
    }
}

AK_CLONES void ak_softmax_backward(const float *y, const float *gy, float *gx, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *gr = gy + r * cols;
        float *xr = gx + r * cols;
        float dot = ak_row_dot(yr, gr, cols);
        for (long j = 0; j < cols; j++) xr[j] += yr[j] * (gr[j] - dot);
    }
}

AK_CLONES void ak_log_softmax_forward(const float *x, float *y, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float m = ak_row_max(xr, cols);
        // y is scratch for the exponentials here, then overwritten with the result.
        float lse = m + ak_logf(exp_shifted_sum(xr, yr, cols, m));
        for (long j = 0; j < cols; j++) yr[j] = xr[j] - lse;
    }
}

AK_CLONES void ak_log_softmax_backward(const float *y, const float *gy, float *gx, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *gr = gy + r * cols;
        float *xr = gx + r * cols;
        float s = ak_row_sum(gr, cols);
        for (long j = 0; j < cols; j++) xr[j] += gr[j] - ak_expf(yr[j]) * s;
    }
}
