#include "kernels.h"
#include "mathfun.h"

static inline float row_max(const float *x, long n) {
    float m = -INFINITY;
    for (long j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

AK_CLONES void ak_softmax_forward(const float *x, float *y, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float m = row_max(xr, cols);
        float s = 0.0f;
        for (long j = 0; j < cols; j++) {
            float e = ak_expf(xr[j] - m);
            yr[j] = e;
            s += e;
        }
        float inv = 1.0f / s;
        for (long j = 0; j < cols; j++) yr[j] *= inv;
    }
}

AK_CLONES void ak_softmax_backward(const float *y, const float *gy, float *gx, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *gr = gy + r * cols;
        float *xr = gx + r * cols;
        float dot = 0.0f;
        for (long j = 0; j < cols; j++) dot += yr[j] * gr[j];
        for (long j = 0; j < cols; j++) xr[j] += yr[j] * (gr[j] - dot);
    }
}

AK_CLONES void ak_log_softmax_forward(const float *x, float *y, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float m = row_max(xr, cols);
        float s = 0.0f;
        for (long j = 0; j < cols; j++) s += ak_expf(xr[j] - m);
        float lse = m + ak_logf(s);
        for (long j = 0; j < cols; j++) yr[j] = xr[j] - lse;
    }
}

AK_CLONES void ak_log_softmax_backward(const float *y, const float *gy, float *gx, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *gr = gy + r * cols;
        float *xr = gx + r * cols;
        float s = 0.0f;
        for (long j = 0; j < cols; j++) s += gr[j];
        for (long j = 0; j < cols; j++) xr[j] += gr[j] - ak_expf(yr[j]) * s;
    }
}
