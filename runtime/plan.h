/* plan.h - a graph planned for concrete input shapes: every value's shape and storage,
 * every step's kernel and prepared state, every arena offset.
 *
 * Built once per set of input shapes; immutable afterwards. Values whose shape depends on
 * data computed during the run (NonZero, data-dependent Reshape...) are "dynamic": their
 * steps infer shapes at run time and their buffers live outside the arena. */
#ifndef CRUN_PLAN_H
#define CRUN_PLAN_H

#include "ops/registry.h"

typedef enum Store {
    STORE_NONE = 0, /* not computed (unused value) */
    STORE_CONST,    /* data known at plan time (weights, folded values) */
    STORE_ARENA,    /* lives in the arena at offset */
    STORE_DYNAMIC   /* shape known only while running */
} Store;

typedef struct PlanValue {
    Tensor t;        /* dtype, rank, dims (and data for STORE_CONST) */
    Store store;
    int root;        /* value owning the storage this one uses (itself, or a view/in-place source) */
    size_t bytes;
    int first, last; /* steps from definition to last use; graph outputs live to n_steps */
    size_t offset;   /* STORE_ARENA */
    size_t sub_offset; /* bytes into the root's storage (a Concat input written in place) */
    bool owned;      /* const data folded at plan time, freed with the plan */
} PlanValue;

typedef struct PlanStep {
    int node;
    const KernelVariant *kv; /* NULL for a dynamic step (chosen while running) */
    void *state;
    size_t state_bytes;
    size_t ws_bytes, ws_offset;
    int64_t flops;
    uint32_t packed_inputs; /* inputs the kernel reads from shared packs only (PrepCtx) */
    bool dynamic;
} PlanStep;

typedef struct PlanInput {
    crun_dtype dtype;
    int rank;
    int64_t dims[CRUN_MAX_RANK];
    ValueKind kind; /* a sequence input is planned as dynamic */
    bool none;      /* an optional input bound to no value */
} PlanInput;

/* Values kept outside the arena: sequences, strings and empty optionals. */
static inline bool value_is_dynamic(const Tensor *t)
{
    return t->kind != VALUE_TENSOR || t->none || t->dtype == CRUN_DTYPE_STRING;
}

typedef struct Plan {
    const Graph *g;
    PlanValue *vals;     /* one per graph value */
    PlanStep *steps;
    int n_steps;
    PlanInput *inputs;   /* the shapes this plan is for, one per graph input */
    int n_threads;
    size_t arena_bytes, lower_bound, naive_bytes, weight_bytes;
    bool has_dynamic;
} Plan;

/* A key of the input shapes a plan is for (types, ranks and dims of all n inputs). */
uint64_t plan_inputs_key(const PlanInput *inputs, int n);

/* Plans g for these input shapes (one per g->inputs) and thread count. */
crun_status plan_build(const Graph *g, const PlanInput *inputs, int n_threads, Plan **out, Diag *d);
void plan_free(Plan *p);

#endif
