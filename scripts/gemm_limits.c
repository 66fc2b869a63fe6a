// The machine's GEMM limits for issue 6's shapes, outside the engine: cblas_sgemm on one thread (the
// attention and linear shapes of ViT-Ti at 512², ViT-S at 224²), and on 2 threads OpenBLAS's own threading
// against two single-threaded halves (the split BLAS.sgemm does), and the linear layers' own kernel
// (Sources/CKernels/linear_gemm.c, weight packed once) against OpenBLAS with its bias fill, both as two
// halves with the caches flushed before each run. Best of 20–30 runs each; a register-only FMA loop gives
// the core's peak.
// usage: clang -O2 -ffp-contract=fast -I Sources/CKernels/include scripts/gemm_limits.c
//          Sources/CKernels/linear_gemm.c -o /tmp/gemm_limits -lopenblas -lpthread && /tmp/gemm_limits
#include "kernels.h"
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float *A, *B, *C;

static void one_thread(const char *name, int ta, int tb, int m, int n, int k, int lda, int ldb, int ldc) {
    double best = 1e9;
    for (int r = 0; r < 20; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, A, lda,
                    B, ldb, 0, C, ldc);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("1 thread  %-16s %5dx%5dx%5d: %6.1f GFLOP/s\n", name, m, n, k, 2.0 * m * n * k / best / 1e9);
}

typedef struct { int r0, r1, n, k; } Half;
static void *half(void *p) {
    Half *h = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, h->r1 - h->r0, h->n, h->k, 1, A + (long)h->r0 * h->k, h->k,
                B, h->k, 0, C + (long)h->r0 * h->n, h->n);
    return NULL;
}

static void two_threads(int m, int n, int k) {
    double native = 1e9, split = 1e9;
    for (int r = 0; r < 30; r++) {
        openblas_set_num_threads(2);
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, A, k, B, k, 0, C, n);
        t = now() - t;
        if (t < native) native = t;
        openblas_set_num_threads(1);
        Half h0 = {0, (m / 2) & ~15, n, k}, h1 = {(m / 2) & ~15, m, n, k};
        pthread_t thread;
        t = now();
        pthread_create(&thread, NULL, half, &h1);
        half(&h0);
        pthread_join(thread, NULL);
        t = now() - t;
        if (t < split) split = t;
    }
    double f = 2.0 * m * n * k;
    printf("2 threads %5dx%5dx%5d: OpenBLAS threads %6.1f, two halves %6.1f GFLOP/s\n", m, n, k, f / native / 1e9,
           f / split / 1e9);
}

// The linear layer y = x·Wᵀ + b over rows r0..<r1, by OpenBLAS (bias fill + beta 1) or by the packed kernel.
typedef struct { int r0, r1, n, k, packed; float *bias, *panels; } Rows;
static void *linear_rows(void *p) {
    Rows *h = p;
    if (h->packed) {
        ak_linear_rows(h->n, h->k, A, h->k, h->panels, h->bias, NULL, 0, C, h->n, 0, h->r0, h->r1);
    } else {
        for (int i = h->r0; i < h->r1; i++) memcpy(C + (long)i * h->n, h->bias, 4L * h->n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, h->r1 - h->r0, h->n, h->k, 1, A + (long)h->r0 * h->k,
                    h->k, B, h->k, 1, C + (long)h->r0 * h->n, h->n);
    }
    return NULL;
}

static void linear_layer(int m, int n, int k, float *bias, float *panels, char *junk) {
    openblas_set_num_threads(1);
    ak_linear_pack(B, k, n, k, 1, panels, 0, ak_linear_panel_count(n));
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < 30; r++)
        for (int packed = 0; packed < 2; packed++) {
            memset(junk, r, 64 << 20); // a layer's inputs come from memory, not from the last run's caches
            int mid = (m / 2) & ~15;
            Rows h0 = {0, mid, n, k, packed, bias, panels}, h1 = {mid, m, n, k, packed, bias, panels};
            pthread_t thread;
            double t = now();
            pthread_create(&thread, NULL, linear_rows, &h1);
            linear_rows(&h0);
            pthread_join(thread, NULL);
            t = now() - t;
            if (t < best[packed]) best[packed] = t;
        }
    double f = 2.0 * m * n * k;
    printf("linear    %5dx%5dx%5d, 2 threads: OpenBLAS + bias fill %6.1f, packed kernel %6.1f GFLOP/s\n", m, n, k,
           f / best[0] / 1e9, f / best[1] / 1e9);
}

__attribute__((target("avx512f,fma"))) static void *fma_peak(void *unused) {
    (void)unused;
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps(i * 1e-3f);
    __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
    long steps = 50000000;
    double t = now();
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                         "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
    }
    t = now() - t;
    float sum = 0;
    for (int i = 0; i < 12; i++) sum += _mm512_reduce_add_ps(acc[i]);
    printf("FMA peak, one of 2 threads: %6.1f GFLOP/s (%g)\n", steps * 12.0 * 32 / t / 1e9, sum);
    return NULL;
}

int main(void) {
    A = malloc(4L * 16000000); B = malloc(4L * 16000000); C = malloc(4L * 16000000);
    for (long i = 0; i < 16000000L; i++) { A[i] = (float)(i % 7) * 0.1f; B[i] = (float)(i % 5) * 0.1f; }
    openblas_set_num_threads(1);
    one_thread("QK^T ti512", 0, 1, 1025, 1025, 64, 576, 576, 1025);
    one_thread("PV ti512", 0, 0, 1025, 64, 1025, 1025, 576, 192);
    one_thread("QK^T s224", 0, 1, 197, 197, 64, 1152, 1152, 197);
    one_thread("PV s224", 0, 0, 197, 64, 197, 197, 1152, 384);
    one_thread("qkv ti512 half", 0, 1, 4100, 576, 192, 192, 192, 576);
    one_thread("fc1 ti512 half", 0, 1, 4100, 768, 192, 192, 192, 768);
    one_thread("fc2 ti512 half", 0, 1, 4100, 192, 768, 768, 768, 192);
    int shapes[][3] = {{1576, 1152, 384}, {1576, 384, 1536}, {1576, 1536, 384}, {1576, 576, 192}, {1576, 768, 192}, {1576, 192, 768}};
    for (int s = 0; s < 6; s++) two_threads(shapes[s][0], shapes[s][1], shapes[s][2]);
    if (ak_linear_available()) {
        float *bias = malloc(4L * 4096), *panels = aligned_alloc(64, 4L * 16000000);
        char *junk = malloc(64 << 20);
        for (int i = 0; i < 4096; i++) bias[i] = i * 0.01f;
        for (int s = 0; s < 6; s++) linear_layer(shapes[s][0], shapes[s][1], shapes[s][2], bias, panels, junk);
        linear_layer(8200, 576, 192, bias, panels, junk);
        linear_layer(8200, 192, 768, bias, panels, junk);
        pthread_t thread;
        pthread_create(&thread, NULL, fma_peak, NULL);
        fma_peak(NULL);
        pthread_join(thread, NULL);
    }
    return 0;
}
