// Write bandwidth of both cores: memset of the 150-class upsampled output of a ViT batch of 8 — 1.26 GB at
// 512² (the default) or 241 MB at 224² (argument 60211200) — from two threads, after a first touch; the floor
// for writing that output.
// usage: cc -O2 scripts/write_bandwidth.c -o /tmp/write_bandwidth -lpthread && /tmp/write_bandwidth [FLOATS]
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t count = 315000000; // floats: 8 · 150 · 512 · 512 ≈ 3.15e8
static float *buffer;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void *fill(void *p) { long h = (long)p; memset(buffer + h * (count / 2), 1, count / 2 * sizeof(float)); return NULL; }

int main(int argc, char **argv) {
    if (argc > 1) count = strtoul(argv[1], NULL, 10) & ~1UL;
    buffer = malloc(count * sizeof(float));
    memset(buffer, 0, count * sizeof(float)); // first touch: page faults out of the timing
    for (int r = 0; r < 5; r++) {
        double t = now();
        pthread_t a, b;
        pthread_create(&a, NULL, fill, (void *)0);
        pthread_create(&b, NULL, fill, (void *)1);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        t = now() - t;
        printf("2-thread memset %.2f GB: %.1f ms = %.1f GB/s\n", count * 4 / 1e9, t * 1e3, count * 4 / t / 1e9);
    }
    return 0;
}
