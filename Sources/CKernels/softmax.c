#include "kernels.h"
#include "mathfun.h"

AK_CLONES void ak_softmax_forward(const float *x, float *y, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float s = ak_exp_shifted_sum(xr, yr, cols, ak_row_max(xr, cols));
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
        float lse = m + ak_logf(ak_exp_shifted_sum(xr, yr, cols, m));
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
