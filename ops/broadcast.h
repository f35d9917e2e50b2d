/* broadcast.h - numpy-style multidirectional broadcasting, shared by every op that
 * combines tensors element by element (arithmetic, comparison, Where, variadic ops). */
#ifndef CRUN_OPS_BROADCAST_H
#define CRUN_OPS_BROADCAST_H

#include "ops/registry.h"

#define BCAST_MAX_IN 3

/* Output dims with the inputs' strides, adjacent dims merged where every input allows
 * it, so the innermost loop is as long as possible. Innermost strides are 0 or 1. */
typedef struct BcastPlan {
    int n_in;
    int rank;
    int64_t dims[CRUN_MAX_RANK];
    int64_t strides[BCAST_MAX_IN][CRUN_MAX_RANK];
    int64_t rows; /* product of all dims but the last */
} BcastPlan;

void bcast_plan(BcastPlan *bp, const Tensor *out, const Tensor *const *in, int n_in);

/* A contiguous inner loop: out[i] = f(in0[i*s0], in1[i*s1], ...) for i < n, with
 * pointers already offset; s are 0 or 1. */
typedef void (*BcastLoop)(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg);

/* Runs loop over the whole output, split into tiles over the pool. */
void bcast_run(const BcastPlan *bp, Tensor *out, const Tensor *const *in, BcastLoop loop, const void *arg,
               struct ThreadPool *pool);

#endif
