// The fused inference attention kernel (Sources/CKernels/attention.c) on one thread, for every head of one
// sample: ViT-S/224 (197 tokens, 6 heads) and ViT-Ti/512 (1025 tokens, 3 heads), head width 64. FLOPs: the two
// GEMMs, 4·N²·64 per head. Best of 200 runs.
// usage: clang -O3 -ffp-contract=fast -I Sources/CKernels/include scripts/attention_kernel.c
//          Sources/CKernels/attention.c Sources/CKernels/linear_gemm.c -o /tmp/attention_kernel -lm && /tmp/attention_kernel
#include "kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void measure(long tokens, long heads) {
    long hd = 64, width = hd * heads, ld = 3 * width;
    float *qkv = aligned_alloc(64, 4 * ((tokens * ld + 15) & ~15L));
    float *out = aligned_alloc(64, 4 * ((tokens * width + 15) & ~15L));
    float *scratch = aligned_alloc(64, 4 * ak_attention_scratch_size(tokens, hd));
    for (long i = 0; i < tokens * ld; i++) qkv[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    double best = 1e9;
    for (int r = 0; r < 200; r++) {
        double t = now();
        for (long h = 0; h < heads; h++)
            ak_attention_pair(qkv + h * hd, qkv + width + h * hd, qkv + 2 * width + h * hd, ld, tokens, hd, 0.125f,
                              out + h * hd, width, scratch);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("%4ld tokens × %ld heads: %7.1f us per sample, %5.1f GFLOP/s on one thread\n", tokens, heads, best * 1e6,
           4.0 * tokens * tokens * hd * heads / best / 1e9);
    free(qkv), free(out), free(scratch);
}

int main(void) {
    if (!ak_attention_supports(64)) { printf("no AVX-512: the engine uses OpenBLAS here\n"); return 0; }
    measure(197, 6);
    measure(1025, 3);
    return 0;
}
