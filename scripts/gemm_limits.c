// The machine's GEMM limits for issue 6's shapes, outside the engine: cblas_sgemm on one thread (the
// attention and linear shapes of ViT-Ti at 512², ViT-S at 224²), and on 2 threads OpenBLAS's own threading
// against two single-threaded halves (the split BLAS.sgemm does). Best of 20–30 runs each.
// usage: cc -O2 scripts/gemm_limits.c -o /tmp/gemm_limits -lopenblas -lpthread && /tmp/gemm_limits
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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
    return 0;
}
