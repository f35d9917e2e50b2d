/* registry.h - what an op is: {parse attrs, infer shapes, kernel variants}.
 *
 * One table (ops.def) lists every op; each family file (conv.c, elementwise.c, ...)
 * defines the OpDesc of its ops. The planner picks, per node, the first kernel variant
 * whose ISA the CPU has and whose applies() accepts the node's shapes; the variant with
 * ISA_SCALAR at the end of each list is the portable reference. */
#ifndef CRUN_OPS_REGISTRY_H
#define CRUN_OPS_REGISTRY_H

#include "runtime/graph.h"
#include "platforms/cpu.h"

struct ThreadPool;

typedef struct InferCtx {
    const Node *node;
    const void *params;
    int n_in, n_out;
    const Tensor *const *in; /* NULL for an omitted optional input; data NULL if unknown */
    Tensor *const *out;      /* infer sets dtype, rank and dims */
    bool needs_data;         /* set by infer: an input's values decide the shape and are unknown */
    Diag *d;
} InferCtx;

typedef struct PrepCtx {
    const Node *node;
    const void *params;
    int n_in, n_out;
    const Tensor *const *in; /* concrete shapes; data only for constants */
    const Tensor *const *out;
    const void *kdata;       /* the chosen variant's data */
    int n_threads;           /* threads the plan runs with (for per-thread scratch) */
    void *state;             /* set by prepare: one malloc'd block (small per-plan data) */
    size_t state_bytes;      /* its size, for memory reports */
    size_t ws_bytes;         /* set by prepare: scratch needed while the kernel runs */
    uint32_t packed_inputs;  /* set by prepare (prep_packed_away): inputs whose data neither
                                prepare nor run reads again once their shared pack exists */
    Diag *d;
    struct PackCache *packs; /* the model's shared packed data (NULL: not shared) */
    bool fp16_weights;       /* the model stores its weights as float16 (Graph.fp16_weights) */
} PrepCtx;

/* Data derived from a node's constant inputs alone (packed weights): made once per model
 * by fill(c, dst) and shared by every plan and session; tag names what it is (a kernel may
 * keep several). Needs c->packs (folding at load has none: there, pack into the state
 * block instead). NULL when out of memory. */
const void *prep_shared(PrepCtx *c, const char *tag, size_t bytes, void (*fill)(const void *c, void *dst));
/* The same with fill's context given (prep_shared passes c). */
const void *prep_shared_ctx(PrepCtx *c, const char *tag, size_t bytes, void (*fill)(const void *ctx, void *dst),
                            const void *ctx);
/* Declares that, with the model's shared packs, input `in` (one of c->in) is read from its
 * pack only: crun compile may then leave its data out of the file. */
void prep_packed_away(PrepCtx *c, const Tensor *in);

/* What a compiled model's packed-away constants point at (VALUE_PACKED): no kernel reads
 * it; prep_shared refuses to re-pack from it. */
extern const unsigned char packed_away[64];
static inline bool data_packed_away(const void *data) { return data == (const void *)packed_away; }

/* Per-step state a kernel keeps across runs (sub-executors of control flow); owned by
 * the executor, which calls release(ptr) when the plan or the executor goes away. */
typedef struct StepSlot {
    void *ptr;
    void (*release)(void *ptr);
} StepSlot;

typedef struct KernelCtx {
    const Node *node;
    const void *params;
    int n_in, n_out;
    const Tensor *const *in;
    Tensor *const *out;
    const void *kdata; /* the chosen variant's data */
    const void *state;
    void *ws;
    struct ThreadPool *pool;
    Diag *d; /* for failures that depend on the data (an index out of range...) */
    StepSlot *slot; /* this step's persistent state (NULL outside an executor) */
    struct Executor *exec; /* the executor running this step (NULL outside one) */
} KernelCtx;

typedef struct KernelVariant {
    const char *name;
    Isa isa;
    bool (*applies)(const PrepCtx *c, const void *kdata); /* NULL: always */
    crun_status (*prepare)(PrepCtx *c);                   /* NULL: nothing to prepare */
    crun_status (*run)(KernelCtx *k);
    const void *data; /* passed to the functions as kdata (e.g. a table of typed loops) */
} KernelVariant;

enum {
    /* Output 0 may be written over any input of the same size and type that dies at this
     * node: the kernel reads each element of it before writing that same element (true of
     * elementwise kernels; not of ops that scatter or gather). */
    OPF_INPLACE = 1u << 0,
    /* Output 0 is input 0's bytes with another shape (Reshape, Squeeze...): no copy. */
    OPF_VIEW = 1u << 1,
    /* The kernel reads only the shapes of its inputs (Shape, Size). */
    OPF_SHAPE_ONLY = 1u << 2,
    /* Never evaluate at plan time (random ops). */
    OPF_NO_FOLD = 1u << 3,
    /* The kernel applies node->act to its output (the fusion pass may set it). */
    OPF_ACT_EPILOGUE = 1u << 4,
    /* Output shapes are known only once the kernel ran (control flow): the step is always
     * dynamic and its kernel gives each output storage with exec_store_output. */
    OPF_KERNEL_SHAPES = 1u << 5,
    /* Inputs may be sequences or empty optionals (others are refused with a message). */
    OPF_ANY_VALUE = 1u << 6,
    /* Output 0 is the inputs joined in order along one axis (Concat). Where only unit dims
     * precede that axis, each input is a consecutive slice of the output's bytes: the
     * planner may then have producers write there, and the kernel must skip an input
     * whose data already is its slice. */
    OPF_JOINS_INPUTS = 1u << 7
};

typedef struct OpDesc {
    const char *domain; /* "" is the default ONNX domain */
    const char *name;
    int min_in, max_in;   /* max_in -1: variadic */
    int min_out, max_out;
    uint32_t flags;
    crun_status (*parse)(Node *n, Diag *d);   /* NULL: no attributes */
    crun_status (*infer)(InferCtx *c);
    int64_t (*flops)(const Node *n, const Tensor *const *in, const Tensor *const *out); /* NULL: 0 */
    const KernelVariant *kernels; /* terminated by an entry with name NULL */
} OpDesc;

/* Kernel-table entries, one per SIMD ISA built in, of a kernel written once and built per
 * ISA: KV_SIMD("maxpool", applies, prepare, run, window_ukernels) gives "maxpool_avx512"
 * with data &window_ukernels_avx512, then the AVX2 and NEON ones, best first. */
#ifdef CRUN_HAVE_AVX512
#define KV_AVX512(name, applies, prepare, run, data) {name "_avx512", ISA_AVX512, applies, prepare, run, &data##_avx512},
#else
#define KV_AVX512(name, applies, prepare, run, data)
#endif
#ifdef CRUN_HAVE_AVX2
#define KV_AVX2(name, applies, prepare, run, data) {name "_avx2", ISA_AVX2, applies, prepare, run, &data##_avx2},
#else
#define KV_AVX2(name, applies, prepare, run, data)
#endif
#ifdef CRUN_HAVE_NEON
#define KV_NEON(name, applies, prepare, run, data) {name "_neon", ISA_NEON, applies, prepare, run, &data##_neon},
#else
#define KV_NEON(name, applies, prepare, run, data)
#endif
/* Marks the functions only KV_SIMD entries name: with no SIMD ISA built (armv7, or the
 * ISA options off) they are unused, which is not an error. */
#define KV_SIMD_ONLY __attribute__((unused))
#define KV_SIMD(name, applies, prepare, run, data) \
    KV_AVX512(name, applies, prepare, run, data) KV_AVX2(name, applies, prepare, run, data) \
    KV_NEON(name, applies, prepare, run, data)

/* The op for (domain, name), or NULL. */
const OpDesc *op_lookup(const char *domain, const char *name);
/* Picks the kernel variant for a prepared context: first whose ISA is allowed and whose
 * applies() accepts. NULL if none. */
const KernelVariant *op_choose_kernel(const OpDesc *op, const PrepCtx *c);

/* Makes op_choose_kernel pick each op's reference kernel (the last that applies) instead
 * of the best; the environment variable CRUN_KERNELS=reference sets it at start. Call
 * before creating sessions (it is read while planning). */
void kernels_use_reference(bool on);

/* Checks input/output counts and runs op->parse. */
crun_status op_parse_node(Node *n, Diag *d);
/* The same for a node as the passes left it (a compiled model's): ops that take a fused
 * activation may also hold a fused bias input past their ONNX count. */
crun_status op_parse_optimised_node(Node *n, Diag *d);

/* ---- helpers for attribute parsing (all fail with a message naming node and attr) ---- */
crun_status attr_get_int(const Node *n, const char *name, int64_t def, int64_t *out, Diag *d);
crun_status attr_get_float(const Node *n, const char *name, float def, float *out, Diag *d);
/* Copies at most max ints; *count gets the number (0 and no error when absent). */
crun_status attr_get_ints(const Node *n, const char *name, int64_t *out, int max, int *count, Diag *d);
crun_status attr_get_floats(const Node *n, const char *name, float *out, int max, int *count, Diag *d);
/* Borrowed string (owned by the node), def when absent. */
crun_status attr_get_string(const Node *n, const char *name, const char *def, const char **out, Diag *d);
/* Allocates params of size bytes into n->params (zeroed). */
void *params_alloc(Node *n, size_t size, Diag *d);

/* Error helpers that name the node. */
crun_status node_fail(const Node *n, Diag *d, crun_status st, const char *fmt, ...) CRUN_PRINTF(4, 5);
#define NODE_CHECK(c, cond, ...) \
    do { \
        if (!(cond)) \
            return node_fail((c)->node, (c)->d, CRUN_ERR_INVALID_MODEL, __VA_ARGS__); \
    } while (0)

/* Shape helpers for infer functions. */
void out_set(Tensor *o, crun_dtype dtype, int rank, const int64_t *dims);
/* Numpy-style multidirectional broadcast of a and b into out dims; false if incompatible. */
bool broadcast_shape(const int64_t *a, int ra, const int64_t *b, int rb, int64_t *out, int *rout);
/* Reads element i of an integer tensor (int32 or int64) as int64. */
int64_t tensor_get_int(const Tensor *t, int64_t i);
double tensor_get_double(const Tensor *t, int64_t i);
/* Stores v as element i (integers wrap like a C cast from int64; floats to ints saturate). */
void tensor_set_int(Tensor *t, int64_t i, int64_t v);
void tensor_set_double(Tensor *t, int64_t i, double v);

#endif
