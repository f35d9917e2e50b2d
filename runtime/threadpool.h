/* threadpool.h - a persistent pthread worker pool that runs one parallel loop at a time.
 *
 * pool_for hands out task indices [0, n_tasks) to the caller and the workers; which thread
 * runs a task varies, so a task's result must not depend on it (that is what keeps outputs
 * identical for every thread count). Workers spin briefly between loops, then sleep. */
#ifndef CRUN_THREADPOOL_H
#define CRUN_THREADPOOL_H

#include <stdint.h>

typedef struct ThreadPool ThreadPool;

/* thread: 0 for the caller, 1.. for workers (index per-thread scratch with it). */
typedef void (*PoolTaskFn)(void *ctx, int64_t task, int thread);

/* n_threads counts the caller; 1 creates no worker. NULL on failure. */
ThreadPool *pool_create(int n_threads);
void pool_free(ThreadPool *p);
/* Threads including the caller; 1 for a NULL pool. */
int pool_threads(const ThreadPool *p);
/* Idle workers stop spinning and sleep until the next pool_for: another library's
 * threads are about to use the cores. */
void pool_rest(ThreadPool *p);

/* Runs fn(ctx, t, thread) for every t in [0, n_tasks) and returns when all are done.
 * A NULL pool runs them on the caller. Not reentrant: tasks must not call pool_for. */
void pool_for(ThreadPool *p, int64_t n_tasks, PoolTaskFn fn, void *ctx);

#endif
