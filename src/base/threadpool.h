/* A fork-join pool for compute kernels. The calling thread is worker 0 and takes part in every
 * job, so a pool of n threads starts n-1 helpers. Between jobs helpers spin briefly (the next
 * op of a forward pass follows within microseconds), then sleep on a condition variable, so an
 * idle server burns no CPU and several sglc processes can share two cores.
 * Not reentrant: one job at a time, submitted from one thread. */
#ifndef SGLC_BASE_THREADPOOL_H
#define SGLC_BASE_THREADPOOL_H

typedef struct threadpool threadpool;

/* fn runs on every worker with its index ith in [0, nth). */
typedef void (*tp_task_fn)(void *ctx, int ith, int nth);

threadpool *tp_create(int n_threads);
void tp_destroy(threadpool *tp);
int tp_size(const threadpool *tp);
/* Runs fn on all workers and returns when every one has finished. A NULL pool runs fn(ctx,0,1). */
void tp_run(threadpool *tp, tp_task_fn fn, void *ctx);

/* Splits [0, n) into nth nearly equal contiguous parts; part ith is [*begin, *end). */
static inline void tp_split(long n, int ith, int nth, long *begin, long *end) {
    long per = n / nth, extra = n % nth;
    *begin = ith * per + (ith < extra ? ith : extra);
    *end = *begin + per + (ith < extra ? 1 : 0);
}

#endif
