// Vectorisable float math: plain arithmetic and bit casts only, so clang turns the loops that call
// these into AVX-512 / AVX2 code. Accuracy: exp and log within 2 ulp (Cephes polynomials);
// erf within 3.5e-7 absolute (a rational fit).
#ifndef ADAROUTE_MATHFUN_H
#define ADAROUTE_MATHFUN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#define AK_CLONES __attribute__((target_clones("arch=znver4", "avx512f", "avx2", "default")))
/// Hand-vectorised kernels (intrinsics): only called after ak_linear_available() said yes.
#define AK_AVX512 __attribute__((target("avx512f,fma")))
#define AK_HAS_AVX512_KERNELS 1
#else
#define AK_CLONES
#define AK_AVX512
#define AK_HAS_AVX512_KERNELS 0
#endif

static inline float ak_bits_to_float(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
static inline int32_t ak_float_to_bits(float f) { int32_t i; memcpy(&i, &f, 4); return i; }

static inline float ak_expf(float x) {
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447504f ? -87.3365447504f : x;
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * ak_bits_to_float(((int32_t)n + 127) << 23);
}

/// Natural log for x > 0 (finite, normal); the callers only pass sums of exponentials ≥ 1.
static inline float ak_logf(float x) {
    int32_t bits = ak_float_to_bits(x);
    int32_t e = ((bits >> 23) & 0xff) - 126;
    float m = ak_bits_to_float((bits & 0x007fffff) | 0x3f000000); // m in [0.5, 1)
    int small = m < 0.707106781186547524f;
    e -= small;
    m = small ? m + m - 1.0f : m - 1.0f;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return m + y + 0.693359375f * fe;
}

/// erf(x) = x·P(x²)/Q(x²) on |x| ≤ 4 (beyond, erf rounds to ±1 in float): a rational least-squares fit
/// (degrees 5/5 in x²) with max error 2.5e-8 in exact arithmetic, 3.5e-7 after float rounding. One division
/// and no exp or branch: a third of the cost of the erfc-with-exp form it replaced, which made the GELU
/// epilogue ~13 % of a ViT-S fc1 GEMM (GELU's max |error| went from 4.5e-7 to 1.2e-6).
static inline float ak_erff(float x) {
    float c = x > 4.0f ? 4.0f : x < -4.0f ? -4.0f : x;
    float z = c * c;
    float p = 1.974625429e-06f;
    p = p * z + 2.886172259e-04f;
    p = p * z + 4.019347170e-03f;
    p = p * z + 5.351436019e-02f;
    p = p * z + 1.965808521e-01f;
    p = p * z + 1.128378949e+00f;
    float q = 3.751030998e-05f;
    q = q * z + 1.220641293e-03f;
    q = q * z + 1.547482973e-02f;
    q = q * z + 1.166165360e-01f;
    q = q * z + 5.075462004e-01f;
    q = q * z + 1.0f;
    float r = c * p / q;
    return r > 1.0f ? 1.0f : r < -1.0f ? -1.0f : r;
}

/// Exact GELU, x·Φ(x) = ½·x·(1 + erf(x/√2)): the forward of activations.c and the linear kernel's epilogue.
static inline float ak_gelu_erf(float x) { return 0.5f * x * (1.0f + ak_erff(x * 0.70710678118654752440f)); }

static inline float ak_tanhf(float x) {
    float a = fabsf(x);
    float e = ak_expf(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    // Near zero the quotient loses relative precision; the odd series is exact there.
    float z = x * x;
    float series = a * (1.0f + z * (-1.0f / 3.0f + z * (2.0f / 15.0f + z * (-17.0f / 315.0f))));
    t = a < 0.0625f ? series : t;
    return x < 0.0f ? -t : t;
}

// ---- row reductions in 16 lanes ----------------------------------------------------------------
// Without -ffast-math the compiler may not reorder a float sum, so a plain `s += x[j]` loop runs one
// element at a time. These keep 16 partial results (one AVX-512 register) and combine them at the end.
#define AK_LANES 16
#define AK_ALWAYS_INLINE static inline __attribute__((always_inline))

AK_ALWAYS_INLINE float ak_lanes_sum(const float *acc) {
    float s = 0.0f;
    for (int i = 0; i < AK_LANES; i++) s += acc[i];
    return s;
}

AK_ALWAYS_INLINE float ak_row_max(const float *x, long n) {
    float m[AK_LANES];
    for (int i = 0; i < AK_LANES; i++) m[i] = -INFINITY;
    long j = 0;
    for (; j + AK_LANES <= n; j += AK_LANES)
        for (int i = 0; i < AK_LANES; i++) m[i] = x[j + i] > m[i] ? x[j + i] : m[i];
    float best = -INFINITY;
    for (; j < n; j++) best = x[j] > best ? x[j] : best;
    for (int i = 0; i < AK_LANES; i++) best = m[i] > best ? m[i] : best;
    return best;
}

AK_ALWAYS_INLINE float ak_row_sum(const float *x, long n) {
    float acc[AK_LANES] = {0};
    long j = 0;
    for (; j + AK_LANES <= n; j += AK_LANES)
        for (int i = 0; i < AK_LANES; i++) acc[i] += x[j + i];
    float tail = 0.0f;
    for (; j < n; j++) tail += x[j];
    return ak_lanes_sum(acc) + tail;
}

AK_ALWAYS_INLINE float ak_row_dot(const float *x, const float *y, long n) {
    float acc[AK_LANES] = {0};
    long j = 0;
    for (; j + AK_LANES <= n; j += AK_LANES)
        for (int i = 0; i < AK_LANES; i++) acc[i] += x[j + i] * y[j + i];
    float tail = 0.0f;
    for (; j < n; j++) tail += x[j] * y[j];
    return ak_lanes_sum(acc) + tail;
}

/// y[j] = exp(x[j] − m) for one row; returns Σ y (16 lanes, see ak_row_sum). y may be x (in place):
/// each block of 16 is loaded before it is stored, so the compiler can vectorise despite the aliasing.
AK_ALWAYS_INLINE float ak_exp_shifted_sum(const float *x, float *y, long n, float m) {
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

#if AK_HAS_AVX512_KERNELS
#include <immintrin.h>
/// The lanes of the 16 floats starting at `first` that lie inside a row of `width`: all, the first few, or none.
AK_ALWAYS_INLINE __mmask16 ak_lane_mask(long width, long first) {
    long n = width - first;
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}
#endif

#endif
