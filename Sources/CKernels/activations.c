#include "kernels.h"
#include "mathfun.h"

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f
#define SQRT_2_OVER_PI 0.79788456080286535588f

AK_CLONES void ak_gelu_erf_forward(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ak_gelu_erf(x[i]);
}

/// d/dx x·Φ(x) = Φ(x) + x·φ(x)
AK_CLONES void ak_gelu_erf_backward(const float *x, const float *gy, float *gx, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + ak_erff(v * INV_SQRT2));
        float pdf = INV_SQRT_2PI * ak_expf(-0.5f * v * v);
        gx[i] += gy[i] * (cdf + v * pdf);
    }
}

AK_CLONES void ak_gelu_tanh_forward(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float u = SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
        y[i] = 0.5f * v * (1.0f + ak_tanhf(u));
    }
}

AK_CLONES void ak_gelu_tanh_backward(const float *x, const float *gy, float *gx, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float u = SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
        float t = ak_tanhf(u);
        float du = SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * v * v);
        gx[i] += gy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

AK_CLONES void ak_exp(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ak_expf(x[i]);
}

AK_CLONES void ak_sigmoid(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = 1.0f / (1.0f + ak_expf(-x[i]));
}
