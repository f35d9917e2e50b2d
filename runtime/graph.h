/* graph.h - the intermediate representation: a value table and a node list.
 *
 * Built by loaders/ from an ONNX model, rewritten by runtime/passes, read by the planner.
 * Nothing here refers to protobuf types. Names are owned by the graph. */
#ifndef CRUN_GRAPH_H
#define CRUN_GRAPH_H

#include "runtime/core.h"
#include "runtime/strmap.h"

struct OpDesc;
struct Graph;

/* Attribute types; the values are ONNX's AttributeProto.AttributeType numbers. */
typedef enum AttrType {
    ATTR_UNDEFINED = 0,
    ATTR_FLOAT = 1,
    ATTR_INT = 2,
    ATTR_STRING = 3,
    ATTR_TENSOR = 4,
    ATTR_GRAPH = 5,
    ATTR_FLOATS = 6,
    ATTR_INTS = 7,
    ATTR_STRINGS = 8,
    ATTR_TENSORS = 9,
    ATTR_GRAPHS = 10,
    ATTR_SPARSE_TENSOR = 11,
    ATTR_SPARSE_TENSORS = 12,
    ATTR_TYPE_PROTO = 13,
    ATTR_TYPE_PROTOS = 14
} AttrType;

/* A tensor together with the data it owns (data freed with tensor_data_free). */
typedef struct OwnedTensor {
    Tensor t;
} OwnedTensor;

typedef struct Attr {
    char *name;
    AttrType type;
    float f;
    int64_t i;
    char *s;            /* STRING: NUL-terminated copy */
    size_t s_len;
    int n;              /* element count of the list types */
    float *floats;
    int64_t *ints;
    char **strings;
    OwnedTensor *tensors; /* TENSOR (n = 1) and TENSORS */
    struct Graph **graphs; /* GRAPH (n = 1) and GRAPHS */
    ValueKind tp_kind;     /* TYPE_PROTO: a tensor or a sequence type ... */
    crun_dtype tp_dtype;   /* ... of this element type */
} Attr;

enum {
    VALUE_IS_INPUT = 1u << 0,  /* a graph input */
    VALUE_IS_OUTPUT = 1u << 1, /* a graph output */
    VALUE_IS_OUTER = 1u << 2,  /* defined in an enclosing graph (subgraph capture) */
    VALUE_IS_CONST = 1u << 3,  /* data holds its value (initializer, Constant, folded) */
    VALUE_BORROWED = 1u << 4,  /* data points into the loader's buffers: not freed with the graph */
    VALUE_PACKED = 1u << 5     /* a compiled model keeps only its packed form: data is the
                                  packed_away marker, which no kernel may read */
};

typedef struct Value {
    char *name;
    ValueKind kind;             /* declared kind (a tensor unless the model says sequence) */
    bool optional;              /* declared as an ONNX optional: may hold no value */
    crun_dtype dtype;           /* UNDEFINED until known */
    int rank;                   /* -1 until known */
    int64_t dims[CRUN_MAX_RANK];/* -1 where unknown or symbolic */
    int sym[CRUN_MAX_RANK];     /* symbol id (see Graph.syms) of a symbolic dim, else -1 */
    void *data;                 /* constant data when VALUE_IS_CONST (owned unless VALUE_BORROWED) */
    int producer;               /* node index, -1 for inputs, constants and outer values */
    int outer;                  /* VALUE_IS_OUTER: value id in the parent graph */
    uint32_t flags;
} Value;

/* Activation applied to an op's output inside its kernel (set by the fusion pass). */
typedef enum ActKind {
    ACT_NONE = 0,
    ACT_RELU,
    ACT_CLIP,        /* min(max(x, alpha), beta) */
    ACT_SIGMOID,
    ACT_HARDSIGMOID, /* max(0, min(1, alpha*x + beta)) */
    ACT_HARDSWISH,
    ACT_LEAKYRELU,   /* x >= 0 ? x : alpha*x */
    ACT_TANH,
    ACT_SILU,        /* x * sigmoid(x) (Swish), from Mul(x, Sigmoid(x)) */
    ACT_GELU,        /* x/2 (1 + erf(x / sqrt 2)), from its exported op pattern */
    ACT_ERF          /* erf x (the Erf op's vector kernel; never fused) */
} ActKind;

/* kind (with its alpha, beta), then, when affine is set, y = y * mul + add (a scale and
 * shift layer after the activation, fused too). */
typedef struct Activation {
    ActKind kind;
    float alpha, beta;
    bool affine;
    float mul, add;
} Activation;

typedef struct Node {
    char *name;
    char *op_type;
    char *domain;
    const struct OpDesc *op;
    int opset;          /* version of the node's domain imported by the model */
    int n_in, n_out;
    int *in, *out;      /* value ids; -1 marks an omitted optional input or output */
    int n_implicit;     /* the last n_implicit inputs are values its subgraphs capture */
    int n_attrs;
    Attr *attrs;
    void *params;       /* typed attributes made by op->parse; freed with free() */
    Activation act;     /* fused activation (ACT_NONE if none) */
    char fused[48];     /* what passes fused into this node, for crun info */
    const struct KernelVariant *kernel; /* pinned by a compiled model: used where it applies */
    bool dead;          /* removed by a pass; dropped by graph_compact */
} Node;

typedef struct GraphIO {
    char *name;         /* the name users see; stays even when passes redirect value */
    int value;
    int parent_input;   /* a subgraph's captured value: index of the owning node's input
                           that feeds it; -1 for a declared input */
} GraphIO;

typedef struct Opset {
    char *domain;
    int64_t version;
} Opset;

typedef struct Graph {
    struct Graph *parent;  /* enclosing graph of a subgraph, NULL for the main graph */
    char *name;
    Value *values;
    int n_values, cap_values;
    Node *nodes;
    int n_nodes, cap_nodes;
    GraphIO *inputs, *outputs;
    int n_inputs, n_outputs;
    StrMap names;          /* value name -> id */
    /* Symbolic dimension names; only the main graph holds them. */
    char **syms;
    int n_syms;
    /* Opsets imported by the model; only the main graph holds them. */
    Opset *opsets;
    int n_opsets;
    /* The model stores its weights as float16, widened by Casts the fold pass evaluated
     * (main graph only): on CPUs with half-precision arithmetic its GEMM kernels compute in
     * float16, the precision it was stored at. */
    bool fp16_weights;
    /* Packed weights shared by all plans (main graph only; see runtime/packcache.h). */
    struct PackCache *packs;
    /* A compiled model's main graph: plans and runs stay within the ISA it was compiled
     * under (isa, a platforms/cpu.h Isa), so they use the packed blocks in the file. */
    bool isa_pinned;
    int isa;
    /* And the arena offset of each of its values in the compiled plan (SIZE_MAX: not in
     * the arena), for plans at compiled_threads threads to be checked against. */
    size_t *compiled_offsets;
    int compiled_threads;
    uint64_t compiled_inputs; /* plan_inputs_key of the shapes it was planned for */
} Graph;

Graph *graph_new(Graph *parent);
void graph_free(Graph *g);
const Graph *graph_root(const Graph *g);

/* Adds a value named name (copied); returns its id, or -1 on allocation failure. */
int graph_add_value(Graph *g, const char *name);
/* Id of the value named name in g, or -1. Does not look in enclosing graphs. */
int graph_find_value(const Graph *g, const char *name);
/* Adds an empty node; returns its index or -1. Pointers into g->nodes may move. */
int graph_add_node(Graph *g);
/* Interns a symbolic dim name in the root graph; returns its id or -1. */
int graph_intern_sym(Graph *g, const char *name);
/* Version of domain imported by the model, or -1 ("" and "ai.onnx" are the same). */
int64_t graph_opset(const Graph *g, const char *domain);

/* Sets producer fields and orders nodes topologically (stable). Fails naming a node on
 * a cycle or a value used before any node defines it. */
crun_status graph_toposort(Graph *g, Diag *d);
/* Replaces every use of value old_id by new_id (node inputs and graph outputs). */
void graph_replace_uses(Graph *g, int old_id, int new_id);
/* Sets input k of n to value v, growing the input list (new slots omitted). */
bool node_set_input(Node *n, int k, int v);
/* Drops dead nodes and renumbers producers. */
void graph_compact(Graph *g);

/* Per-value consumer lists in CSR form: consumers of value v are
 * nodes idx[start[v] .. start[v+1]). */
typedef struct Uses {
    int *start;
    int *idx;
} Uses;
crun_status uses_build(const Graph *g, Uses *u);
void uses_free(Uses *u);
static inline int uses_count(const Uses *u, int v) { return u->start[v + 1] - u->start[v]; }
/* True when the value is a graph output or used by a subgraph of any node. */
bool value_escapes(const Graph *g, int v);

/* ---- attributes ---- */
const Attr *node_attr(const Node *n, const char *name);
void attr_clear(Attr *a);

/* Owned tensor data (also used for constants). */
void tensor_data_free(crun_dtype dtype, void *data, int64_t numel);

#endif
