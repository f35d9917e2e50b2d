/* executor.h - runs one graph: binds inputs, (re)plans when their shapes change, walks
 * the steps. A crun_session is an executor of the model's main graph; control-flow ops
 * (If, Loop, Scan, SequenceMap) run their subgraphs with executors of their own. */
#ifndef CRUN_EXECUTOR_H
#define CRUN_EXECUTOR_H

#include "runtime/plan.h"

struct ThreadPool;
typedef struct Executor Executor;

typedef struct ExecOptions {
    int n_threads;
    struct ThreadPool *pool;  /* borrowed; NULL: the executor makes its own */
    void *arena;              /* caller-owned arena, or NULL */
    size_t arena_bytes;
    const crun_dim_value *dims; /* symbol values for inputs never bound (copied) */
    size_t n_dims;
    Backend backend;
} ExecOptions;

/* g and source (a name for messages) are borrowed for the executor's life. */
crun_status exec_create(const Graph *g, const char *source, const ExecOptions *o, Executor **out);
void exec_free(Executor *e);

/* Binds input i to the value v (a tensor, a sequence, or none). The data (and sequence
 * items) are borrowed until the next exec_run, which copies them in. */
crun_status exec_bind(Executor *e, int i, const Tensor *v);
/* Plans for the bound shapes (defaults for unbound inputs) unless the plan fits already.
 * A plan failure is reported in crun_last_error. */
crun_status exec_plan(Executor *e);
/* Plans if needed, then runs. Failures are reported in crun_last_error. */
crun_status exec_run(Executor *e);
/* Output i of the last successful run (owned by the executor, valid until the next
 * bind/run/free), or NULL. */
const Tensor *exec_output(const Executor *e, int i);

/* Gives value (a dynamic value of e's graph) storage shaped like t: sets t->data or
 * t->seq. For kernels that decide their output shapes while running (control flow). */
crun_status exec_store_output(Executor *e, int value, Tensor *t);

/* Introspection for the public API. */
const Plan *exec_current_plan(const Executor *e);
const Tensor *exec_values(const Executor *e);
int exec_threads(const Executor *e);
int64_t exec_plan_count(const Executor *e);
/* Whether planning with default dims failed and was left for later. */
bool exec_defaulted(const Executor *e);

/* Per-step wall time of the runs since profiling was turned on or the plan changed. */
typedef struct ExecStepTime {
    int64_t runs;
    double total_ms, last_start_ms, last_ms;
} ExecStepTime;
/* Turns timing on (allocating per-step counters now and at each re-plan, never while
 * running) or off; off, a run pays one branch per step. */
crun_status exec_set_profiling(Executor *e, bool on);
/* Counters per step of the current plan, NULL when profiling is off. */
const ExecStepTime *exec_step_times(const Executor *e);

#endif
