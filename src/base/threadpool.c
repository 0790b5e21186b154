/* Implementation of base/threadpool.h.
 *
 * A job has n parts (ith = 0..n-1). Parts are not bound to threads: every participant, the
 * submitter included, claims the next unclaimed part from one atomic word until none is left,
 * then the submitter waits only for parts already claimed. On an idle machine each thread ends
 * up with one part, as with a static split; on an oversubscribed one (several servers on two
 * cores) a helper that is not running at the moment simply does not take part, instead of
 * stalling every op of the forward pass until the scheduler runs it.
 *
 * The word `claim` holds (generation << 32) | next part, so a claim made for one job can never
 * succeed against the next. Helpers spin briefly between jobs, then sleep on a condition
 * variable; the submitter signals it only when some helper is asleep. */
#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* About 100-200 microseconds of spinning before a helper sleeps. */
#define SPIN_ITERATIONS 20000

struct threadpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    _Atomic uint64_t claim; /* generation << 32 | next part to claim */
    atomic_int done;        /* parts of the current job finished */
    atomic_int sleepers;
    atomic_bool stop;
    tp_task_fn fn;
    void *ctx;
};

static inline uint32_t generation_of(uint64_t w) { return (uint32_t)(w >> 32); }

/* Claims and runs parts of job `gen` until none is left or the job is no longer current. */
static void run_parts(threadpool *tp, uint32_t gen) {
    uint64_t w = atomic_load_explicit(&tp->claim, memory_order_acquire);
    for (;;) {
        if (generation_of(w) != gen || (int)(uint32_t)w >= tp->n) return;
        if (!atomic_compare_exchange_weak_explicit(&tp->claim, &w, w + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        /* the job's fn/ctx stay put until every claimed part is done */
        tp->fn(tp->ctx, (int)(uint32_t)w, tp->n);
        atomic_fetch_add_explicit(&tp->done, 1, memory_order_release);
        w = atomic_load_explicit(&tp->claim, memory_order_acquire);
    }
}

static void *worker_main(void *p) {
    threadpool *tp = p;
    uint32_t seen = 0; /* jobs are numbered from 1 */
    for (;;) {
        int spins = 0;
        uint32_t gen;
        while ((gen = generation_of(atomic_load_explicit(&tp->claim, memory_order_acquire))) ==
               seen) {
            if (atomic_load(&tp->stop)) return NULL;
            if (++spins < SPIN_ITERATIONS) {
                if (spins % 1024 == 0) sched_yield(); /* let a descheduled peer run */
                else cpu_relax();
                continue;
            }
            pthread_mutex_lock(&tp->mutex);
            atomic_fetch_add(&tp->sleepers, 1);
            while (generation_of(atomic_load(&tp->claim)) == seen && !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->wake, &tp->mutex);
            atomic_fetch_sub(&tp->sleepers, 1);
            pthread_mutex_unlock(&tp->mutex);
            spins = 0;
        }
        if (atomic_load(&tp->stop)) return NULL;
        seen = gen;
        run_parts(tp, gen);
    }
}

threadpool *tp_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n = n_threads;
    pthread_mutex_init(&tp->mutex, NULL);
    pthread_cond_init(&tp->wake, NULL);
    tp->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    atomic_store(&tp->claim, (uint64_t)n_threads); /* generation 0, nothing to claim */
    for (int i = 1; i < n_threads; i++) pthread_create(&tp->threads[i], NULL, worker_main, tp);
    return tp;
}

void tp_destroy(threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mutex);
    atomic_store(&tp->stop, true);
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mutex);
    for (int i = 1; i < tp->n; i++) pthread_join(tp->threads[i], NULL);
    pthread_mutex_destroy(&tp->mutex);
    pthread_cond_destroy(&tp->wake);
    free(tp->threads);
    free(tp);
}

int tp_size(const threadpool *tp) { return tp ? tp->n : 1; }

void tp_run(threadpool *tp, tp_task_fn fn, void *ctx) {
    if (!tp || tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    uint32_t gen = generation_of(atomic_load(&tp->claim)) + 1;
    atomic_store_explicit(&tp->claim, (uint64_t)gen << 32, memory_order_release);
    if (atomic_load(&tp->sleepers) > 0) {
        pthread_mutex_lock(&tp->mutex);
        pthread_cond_broadcast(&tp->wake);
        pthread_mutex_unlock(&tp->mutex);
    }
    run_parts(tp, gen);
    /* every part is claimed now; wait for the ones helpers are still running */
    int spins = 0;
    while (atomic_load_explicit(&tp->done, memory_order_acquire) < tp->n) {
        if (++spins < 4000) cpu_relax();
        else sched_yield();
    }
}
