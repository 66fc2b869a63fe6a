#include "kernels.h"
#include "mathfun.h"

// Pixels are the contiguous axis (NCHW logits), so every loop below runs along pixels and
// vectorises; the class loop is outside.
enum { BLOCK = 256 };

AK_CLONES long ak_cross_entropy_forward(const float *logits, const int32_t *labels, float *lse, long classes,
                                        long plane, long p0, long p1, int32_t ignore, double *loss_sum,
                                        long *valid) {
    float m[BLOCK], s[BLOCK];
    long bad = -1;
    for (long b0 = p0; b0 < p1; b0 += BLOCK) {
        long n = p1 - b0 < BLOCK ? p1 - b0 : BLOCK;
        for (long i = 0; i < n; i++) m[i] = logits[b0 + i];
        for (long c = 1; c < classes; c++) {
            const float *row = logits + c * plane + b0;
            for (long i = 0; i < n; i++) m[i] = row[i] > m[i] ? row[i] : m[i];
        }
        for (long i = 0; i < n; i++) s[i] = 0.0f;
        for (long c = 0; c < classes; c++) {
            const float *row = logits + c * plane + b0;
            for (long i = 0; i < n; i++) s[i] += ak_expf(row[i] - m[i]);
        }
        for (long i = 0; i < n; i++) lse[b0 + i] = m[i] + ak_logf(s[i]);
        double acc = 0.0;
        long count = 0;
        for (long i = 0; i < n; i++) {
            int32_t y = labels[b0 + i];
            if (y == ignore) continue;
            if (y < 0 || y >= classes) {
                if (bad < 0) bad = b0 + i;
                continue;
            }
            acc += (double)(lse[b0 + i] - logits[(long)y * plane + b0 + i]);
            count++;
        }
        *loss_sum += acc;
        *valid += count;
    }
    return bad;
}

AK_CLONES void ak_cross_entropy_backward(const float *logits, const int32_t *labels, const float *lse,
                                         float *glogits, long classes, long plane, long p0, long p1,
                                         int32_t ignore, float scale) {
    for (long c = 0; c < classes; c++) {
        const float *row = logits + c * plane;
        float *grow = glogits + c * plane;
        for (long p = p0; p < p1; p++) {
            int32_t y = labels[p];
            float keep = (y == ignore || y < 0 || y >= classes) ? 0.0f : scale;
            float onehot = y == (int32_t)c ? 1.0f : 0.0f;
            grow[p] += keep * (ak_expf(row[p] - lse[p]) - onehot);
        }
    }
}
