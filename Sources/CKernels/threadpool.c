// A small spinning thread pool for the engine's parallel loops (Parallel.chunks and the split GEMMs).
//
// Why not libdispatch: a step runs several hundred short parallel regions, and between them
// dispatch's workers go to sleep; waking one costs tens of µs in a VM. Measured on ViT-Ti/224 inference
// (2 cores, the same GEMM split): 28–29 images/s on dispatch, 33–36 on this pool. Our workers spin (with
// `pause`) for 2 ms after each region, then sleep on a condition variable, so an idle engine costs nothing.
//
// Protocol: one job at a time (the caller runs regions one after another). `state` packs the job's
// generation, its piece count and the next unclaimed piece into one atomic word, so a claim (a
// compare-exchange of the whole word) is only ever made against the job it was checked against: a
// worker that looked at an old job can never claim a piece of a newer one. fn/ctx are read after a
// successful claim; the job cannot finish (and be replaced) before that claimed piece is done.
#include "kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

enum { max_workers = 255 };

static struct {
    _Atomic uint64_t state;            // generation << 40 | pieces << 20 | next piece
    ak_task_fn fn;                     // the current job, valid while it has unfinished claimed pieces
    void *ctx;
    _Atomic long completed;            // pieces finished in the current job
    _Atomic int sleepers;
    _Atomic int busy;                  // a caller owns the pool (other callers run their pieces inline)
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int workers;                       // threads started (the caller is the extra one)
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

enum { spin_ns = 2000000 };            // how long an idle worker spins before it sleeps (20 ms measured no better)

static _Thread_local int inside_job;   // nested regions run inline

enum { piece_bits = 20 };
static const uint64_t piece_mask = (1u << piece_bits) - 1;
static uint32_t generation_of(uint64_t s) { return (uint32_t)(s >> (2 * piece_bits)); }
static long pieces_of(uint64_t s) { return (long)((s >> piece_bits) & piece_mask); }
static long next_of(uint64_t s) { return (long)(s & piece_mask); }

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Claims and runs pieces of job `generation` until none are left (or a newer job started).
static void run_pieces(uint32_t generation) {
    uint64_t s = atomic_load(&pool.state);
    for (;;) {
        if (generation_of(s) != generation || next_of(s) >= pieces_of(s)) return;
        if (!atomic_compare_exchange_weak(&pool.state, &s, s + 1)) continue;
        pool.fn(pool.ctx, next_of(s));
        atomic_fetch_add(&pool.completed, 1);
        s = atomic_load(&pool.state);
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    inside_job = 1;
    uint32_t seen = generation_of(atomic_load(&pool.state));
    for (;;) {
        // Spin for new work, checking the clock only every 256 pauses.
        long deadline = now_ns() + spin_ns;
        uint32_t g = seen;
        for (int i = 1;; i++) {
            g = generation_of(atomic_load_explicit(&pool.state, memory_order_acquire));
            if (g != seen) break;
            cpu_relax();
            if ((i & 255) == 0 && now_ns() > deadline) break;
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((g = generation_of(atomic_load(&pool.state))) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = g;
        run_pieces(g);
    }
    return NULL;
}

static void ensure_workers(int wanted) {
    if (wanted > max_workers) wanted = max_workers;
    while (pool.workers < wanted) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker_main, NULL);
        pthread_attr_destroy(&attr);
        if (failed) break;  // fewer helpers: the caller still runs every piece itself
        pool.workers++;
    }
}

void ak_pool_run(long pieces, int threads, ak_task_fn fn, void *ctx) {
    if (pieces <= 0) return;
    if (pieces == 1 || threads <= 1 || inside_job || pieces > (long)piece_mask || atomic_exchange(&pool.busy, 1)) {
        for (long i = 0; i < pieces; i++) fn(ctx, i);
        return;
    }
    ensure_workers(threads - 1);
    inside_job = 1;
    pool.fn = fn;
    pool.ctx = ctx;
    atomic_store(&pool.completed, 0);
    uint32_t generation = (generation_of(atomic_load(&pool.state)) + 1) & 0xffffff;
    // Publishes fn/ctx (release): a worker that claims a piece of this generation sees them.
    atomic_store(&pool.state, (uint64_t)generation << (2 * piece_bits) | (uint64_t)pieces << piece_bits);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_pieces(generation);
    while (atomic_load_explicit(&pool.completed, memory_order_acquire) < pieces) cpu_relax();
    inside_job = 0;
    atomic_store(&pool.busy, 0);
}

int ak_pool_inside_job(void) { return inside_job; }

