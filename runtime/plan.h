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

typedef struct Plan Plan;

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
    /* A backend region (several nodes run as one step by another library): the values
     * crossing its boundary, n_region_in inputs then n_region_out outputs; NULL for a
     * step of one node. node is then the region's last node. */
    int *region_io;
    int n_region_in, n_region_out;
    const char *region_note;      /* for crun info: what the region holds */
    void (*release)(void *state); /* frees state when set (else mem_free) */
} PlanStep;

/* The values a step reads and writes: its node's inputs and outputs, or a region's. */
typedef struct StepIo {
    const int *in, *out;
    int n_in, n_out;
} StepIo;
StepIo step_io(const Plan *p, const PlanStep *s);

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

typedef enum Backend {
    BACKEND_NATIVE = 0, /* crun's own kernels */
    BACKEND_XNNPACK,    /* XNNPACK for the regions it supports, crun's kernels elsewhere */
    BACKEND_AUTO        /* whichever of the two runs the model faster (timed at plan time) */
} Backend;

struct Plan {
    const Graph *g;
    PlanValue *vals;     /* one per graph value */
    PlanStep *steps;
    int n_steps;
    PlanInput *inputs;   /* the shapes this plan is for, one per graph input */
    int n_threads;
    size_t arena_bytes, lower_bound, naive_bytes, weight_bytes;
    bool has_dynamic;
    Backend backend;     /* NATIVE or XNNPACK: what this plan was built with */
};

/* A key of the input shapes a plan is for (types, ranks and dims of all n inputs). */
uint64_t plan_inputs_key(const PlanInput *inputs, int n);

/* Which nodes a BACKEND_XNNPACK plan may give to XNNPACK regions (NULL allow: every node
 * XNNPACK takes), and whether each node is a region of its own (to time them one by one). */
typedef struct XnnChoice {
    const uint8_t *allow; /* per graph node */
    bool one_per_node;
} XnnChoice;

/* Plans g for these input shapes (one per g->inputs), thread count and backend (NATIVE
 * or XNNPACK; xc may be NULL). */
crun_status plan_build(const Graph *g, const PlanInput *inputs, int n_threads, Backend backend, const XnnChoice *xc,
                       Plan **out, Diag *d);
void plan_free(Plan *p);

#endif
