/* threadpool.c - spin-then-sleep worker pool (see threadpool.h). */
#include "runtime/threadpool.h"

#include "runtime/core.h"
#include "platforms/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Iterations a worker polls for the next loop before it sleeps: long enough to cover
 * the gap between two steps of a run, short enough not to burn a core between runs. */
#define SPIN_ITERS 20000

struct ThreadPool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int sleepers;
    atomic_int stop;
    PoolTaskFn fn;
    void *ctx;
    int64_t n_tasks;
    int64_t grain; /* tasks taken per claim */
    atomic_llong next;
    atomic_int done_workers;
    atomic_int rest; /* pool_rest: idle workers sleep at once instead of spinning */
    Isa isa_limit; /* the caller's thread limit (isa_set_thread_limit), for the workers */
};

typedef struct WorkerArg {
    ThreadPool *p;
    int index;
} WorkerArg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/* Threads claim runs of `grain` tasks: many tiny tasks (one per channel plane, say)
 * would otherwise cost more in contended claims than in work. */
static void run_tasks(ThreadPool *p, int thread)
{
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&p->next, p->grain, memory_order_relaxed);
        if (t >= p->n_tasks)
            return;
        int64_t end = t + p->grain < p->n_tasks ? t + p->grain : p->n_tasks;
        for (; t < end; t++)
            p->fn(p->ctx, t, thread);
    }
}

static unsigned wait_for_work(ThreadPool *p, unsigned seen)
{
    unsigned g = seen;
    for (int i = 0; i < SPIN_ITERS; i++) {
        g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen)
            return g;
        if (atomic_load_explicit(&p->rest, memory_order_relaxed))
            break;
        cpu_relax();
        if ((i & 1023) == 1023)
            sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->gen)) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg)
{
    WorkerArg *wa = arg;
    ThreadPool *p = wa->p;
    int index = wa->index;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load(&p->stop))
            return NULL;
        isa_set_thread_limit(p->isa_limit);
        run_tasks(p, index);
        atomic_fetch_add_explicit(&p->done_workers, 1, memory_order_release);
    }
}

static void wake_workers(ThreadPool *p)
{
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

ThreadPool *pool_create(int n_threads)
{
    ThreadPool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (p->n > 1) {
        p->threads = calloc((size_t)p->n - 1, sizeof *p->threads);
        if (!p->threads) {
            pool_free(p);
            return NULL;
        }
        for (int i = 1; i < p->n; i++) {
            WorkerArg *wa = malloc(sizeof *wa);
            if (wa) {
                wa->p = p;
                wa->index = i;
            }
            if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                p->n = i; /* workers 1..i-1 exist */
                pool_free(p);
                return NULL;
            }
        }
    }
    return p;
}

void pool_free(ThreadPool *p)
{
    if (!p)
        return;
    if (p->n > 1 && p->threads) {
        atomic_store(&p->stop, 1);
        wake_workers(p);
        for (int i = 0; i < p->n - 1; i++)
            pthread_join(p->threads[i], NULL);
    }
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int pool_threads(const ThreadPool *p) { return p ? p->n : 1; }

void pool_rest(ThreadPool *p)
{
    if (p)
        atomic_store_explicit(&p->rest, 1, memory_order_relaxed);
}

void pool_for(ThreadPool *p, int64_t n_tasks, PoolTaskFn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->isa_limit = isa_get_thread_limit();
    /* About eight claims per thread: balance stays fine, claims stay few. */
    p->grain = n_tasks / (8 * (int64_t)p->n);
    if (p->grain < 1)
        p->grain = 1;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->done_workers, 0, memory_order_relaxed);
    atomic_store_explicit(&p->rest, 0, memory_order_relaxed);
    wake_workers(p);
    run_tasks(p, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->done_workers, memory_order_acquire) < p->n - 1) {
        cpu_relax();
        if (++spins % 1024 == 0)
            sched_yield();
    }
}
