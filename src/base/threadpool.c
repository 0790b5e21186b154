/* Implementation of base/threadpool.h. A job is published by bumping `generation`; helpers
 * that see the bump run it and count themselves done in `pending`. Helpers spin for a short
 * while before sleeping, and the submitter signals the condition variable only when some
 * helper is asleep, so back-to-back jobs cost no system calls. */
#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
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
    atomic_uint generation;
    atomic_int pending;
    atomic_int sleepers;
    atomic_bool stop;
    tp_task_fn fn;
    void *ctx;
};

typedef struct {
    threadpool *tp;
    int index;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg arg = *(worker_arg *)p;
    free(p);
    threadpool *tp = arg.tp;
    /* Jobs are counted from 0 at creation; reading the counter here instead would miss a job
     * (or the stop) published before this thread first ran. */
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&tp->generation, memory_order_acquire) == seen) {
            if (++spins < SPIN_ITERATIONS) {
                if (spins % 1024 == 0) sched_yield(); /* let a descheduled peer run */
                else cpu_relax();
                continue;
            }
            pthread_mutex_lock(&tp->mutex);
            atomic_fetch_add(&tp->sleepers, 1);
            while (atomic_load(&tp->generation) == seen && !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->wake, &tp->mutex);
            atomic_fetch_sub(&tp->sleepers, 1);
            pthread_mutex_unlock(&tp->mutex);
            spins = 0;
        }
        seen = atomic_load(&tp->generation);
        if (atomic_load(&tp->stop)) return NULL;
        tp->fn(tp->ctx, arg.index, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_release);
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
    for (int i = 1; i < n_threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        arg->tp = tp;
        arg->index = i;
        pthread_create(&tp->threads[i], NULL, worker_main, arg);
    }
    return tp;
}

void tp_destroy(threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mutex);
    atomic_store(&tp->stop, true);
    atomic_fetch_add(&tp->generation, 1);
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
    atomic_store(&tp->pending, tp->n - 1);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    if (atomic_load(&tp->sleepers) > 0) {
        pthread_mutex_lock(&tp->mutex);
        pthread_cond_broadcast(&tp->wake);
        pthread_mutex_unlock(&tp->mutex);
    }
    fn(ctx, 0, tp->n);
    /* Spin while the helpers are likely running; when the machine is oversubscribed (several
     * servers on two cores) a helper may be waiting for this very core, so yield it. */
    int spins = 0;
    while (atomic_load_explicit(&tp->pending, memory_order_acquire) > 0) {
        if (++spins < 4000) cpu_relax();
        else sched_yield();
    }
}
