/* crun_read.c - loading a .crun file (see crun_file.h and crun_write.c for the layout).
 *
 * The tables are small (names, ids, attributes) and are decoded into the graph; the
 * weights and packed blocks are not read at all: values and the pack cache point into the
 * image. Everything decoded is checked as the ONNX loader checks a model: counts against
 * the bytes left, ids against their tables, blobs against the blob section, and the graph
 * is ordered and its nodes parsed the usual way. */
#include "loaders/crun_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model.h"
#include "runtime/packcache.h"

#define MAX_GRAPH_DEPTH 32

typedef struct NodeRef {
    Graph *g;
    int index;
    const char *name; /* to check the order survived graph_toposort */
} NodeRef;

typedef struct Reader {
    const uint8_t *p;
    size_t n, at;
    const uint8_t *blobs;
    uint64_t blobs_bytes;
    int n_syms;
    NodeRef *nodes;
    int n_nodes, cap_nodes;
    int depth;
    Diag *d;
    crun_status st;
} Reader;

static bool bad(Reader *r, const char *what)
{
    if (r->st == CRUN_OK)
        r->st = diag_fail(r->d, CRUN_ERR_INVALID_MODEL, "compiled model is corrupt (%s at byte %zu of the tables)",
                          what, r->at);
    return false;
}

static bool oom(Reader *r)
{
    if (r->st == CRUN_OK)
        r->st = diag_fail(r->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory loading the compiled model");
    return false;
}

static bool get(Reader *r, void *dst, size_t k)
{
    if (r->st != CRUN_OK)
        return false;
    if (k > r->n - r->at)
        return bad(r, "truncated record");
    memcpy(dst, r->p + r->at, k);
    r->at += k;
    return true;
}

/* Fixed-size fields; 0 after a failure (which get recorded). */
#define GETTER(name, T) \
    static T name(Reader *r) \
    { \
        T v = 0; \
        get(r, &v, sizeof v); \
        return v; \
    }
GETTER(get_u8, uint8_t)
GETTER(get_i32, int32_t)
GETTER(get_i64, int64_t)
GETTER(get_u64, uint64_t)
GETTER(get_f32, float)
#undef GETTER

/* A count of records of at least min_bytes each: never more than the bytes left allow. */
static int get_count(Reader *r, size_t min_bytes)
{
    uint32_t v = 0;
    if (!get(r, &v, 4))
        return 0;
    if (v > INT32_MAX / 2 || (size_t)v * min_bytes > r->n - r->at) {
        bad(r, "count past the end");
        return 0;
    }
    return (int)v;
}

/* A count of records of at least min_bytes each and a zeroed array for them (one element
 * more, so never empty); NULL after a failure, which is recorded. */
static void *get_table(Reader *r, size_t min_bytes, size_t elem, int *n)
{
    *n = get_count(r, min_bytes);
    void *p = r->st == CRUN_OK ? calloc((size_t)*n + 1, elem) : NULL;
    if (!p && r->st == CRUN_OK)
        oom(r);
    return p;
}

/* A string (copied, NUL-terminated); *len gets its length. NULL on failure. */
static char *get_bytes(Reader *r, size_t *len)
{
    int n = get_count(r, 1);
    if (r->st != CRUN_OK)
        return NULL;
    char *s = str_ndup((const char *)r->p + r->at, (size_t)n);
    if (!s) {
        oom(r);
        return NULL;
    }
    r->at += (size_t)n;
    if (len)
        *len = (size_t)n;
    return s;
}

static char *get_str(Reader *r) { return get_bytes(r, NULL); }

/* A name into a fixed buffer (kernel names, tags, fused notes), truncated to fit. */
static void get_name(Reader *r, char *dst, size_t cap)
{
    char *s = get_str(r);
    dst[0] = 0;
    if (s)
        snprintf(dst, cap, "%s", s);
    free(s);
}

/* A blob reference; its size goes to *bytes, which when not SIZE_MAX on entry is the size
 * it must have. NULL on failure. */
static const void *get_blob(Reader *r, size_t *bytes)
{
    uint64_t off = get_u64(r), n = get_u64(r);
    if (r->st != CRUN_OK)
        return NULL;
    if (off % CRUNFILE_BLOB_ALIGN || off > r->blobs_bytes || n > r->blobs_bytes - off ||
        (*bytes != SIZE_MAX && n != *bytes)) {
        bad(r, "blob out of range");
        return NULL;
    }
    *bytes = (size_t)n;
    return r->blobs + off;
}

static bool get_shape(Reader *r, crun_dtype *dtype, int *rank, int64_t *dims)
{
    int32_t t = get_i32(r), k = get_i32(r);
    if (r->st != CRUN_OK)
        return false;
    if (!dtype_is_valid(t) || k < 0 || k > CRUN_MAX_RANK)
        return bad(r, "bad tensor type or rank");
    *dtype = (crun_dtype)t;
    *rank = k;
    for (int i = 0; i < k; i++)
        dims[i] = get_i64(r);
    if (r->st == CRUN_OK && shape_numel(dims, k) < 0)
        return bad(r, "bad tensor dims");
    return r->st == CRUN_OK;
}

/* Tensor data: strings are copied out (owned), other data is inline (copied) or a blob
 * (borrowed, *borrowed set). */
static void *get_data(Reader *r, crun_dtype dtype, int64_t numel, bool as_blob, bool *borrowed)
{
    *borrowed = false;
    if (dtype == CRUN_DTYPE_STRING) {
        if ((size_t)numel > (r->n - r->at) / 4)
            return bad(r, "count past the end"), NULL;
        char **s = mem_calloc_aligned((size_t)numel * sizeof *s);
        if (!s)
            return oom(r), NULL;
        for (int64_t i = 0; i < numel && r->st == CRUN_OK; i++)
            s[i] = get_str(r);
        if (r->st != CRUN_OK)
            tensor_data_free(dtype, s, numel), s = NULL;
        return s;
    }
    size_t bytes = (size_t)numel * dtype_size(dtype);
    if (as_blob) {
        *borrowed = true;
        return (void *)get_blob(r, &bytes);
    }
    size_t n = 0;
    char *raw = get_bytes(r, &n);
    void *data = raw && n == bytes ? mem_alloc_aligned(bytes) : NULL;
    if (raw && n != bytes)
        bad(r, "tensor data of the wrong size");
    else if (raw && !data)
        oom(r);
    if (data && bytes)
        memcpy(data, raw, bytes);
    free(raw);
    return data;
}

static Graph *get_graph(Reader *r, Graph *parent);

static bool get_attr_lists(Reader *r, Attr *a)
{
    int n;
    switch (a->type) {
    case ATTR_FLOATS:
        n = get_count(r, 4);
        if ((a->floats = malloc((size_t)n * sizeof(float) + 1)))
            get(r, a->floats, (size_t)n * sizeof(float));
        break;
    case ATTR_INTS:
        n = get_count(r, 8);
        if ((a->ints = malloc((size_t)n * sizeof(int64_t) + 1)))
            get(r, a->ints, (size_t)n * sizeof(int64_t));
        break;
    case ATTR_STRINGS:
        n = get_count(r, 4);
        if ((a->strings = calloc((size_t)n + 1, sizeof *a->strings)))
            for (int i = 0; i < n && r->st == CRUN_OK; i++)
                a->strings[i] = get_str(r);
        break;
    default: return true;
    }
    a->n = n;
    if (r->st != CRUN_OK)
        return false;
    return a->floats || a->ints || a->strings ? true : oom(r);
}

static bool get_attr_tensors(Reader *r, Attr *a)
{
    int n = get_count(r, 8);
    if (r->st != CRUN_OK || (a->type == ATTR_TENSOR && n != 1))
        return bad(r, "bad tensor attribute");
    if (!(a->tensors = calloc((size_t)n + 1, sizeof *a->tensors)))
        return oom(r);
    a->n = a->type == ATTR_TENSORS ? n : 0;
    for (int i = 0; i < n; i++) {
        Tensor *t = &a->tensors[i].t;
        bool borrowed;
        if (!get_shape(r, &t->dtype, &t->rank, t->dims))
            return false;
        t->data = get_data(r, t->dtype, tensor_numel(t), false, &borrowed);
        if (!t->data && tensor_numel(t) > 0)
            return false;
    }
    return r->st == CRUN_OK;
}

static bool get_attr_graphs(Reader *r, Attr *a, Graph *owner)
{
    int n = get_count(r, 16);
    if (r->st != CRUN_OK || (a->type == ATTR_GRAPH && n != 1))
        return bad(r, "bad graph attribute");
    if (!(a->graphs = calloc((size_t)n + 1, sizeof *a->graphs)))
        return oom(r);
    a->n = a->type == ATTR_GRAPHS ? n : 0;
    for (int i = 0; i < n; i++)
        if (!(a->graphs[i] = get_graph(r, owner)))
            return false;
    return true;
}

static bool get_attr(Reader *r, Attr *a, Graph *owner)
{
    if (!(a->name = get_str(r)))
        return false;
    a->type = (AttrType)get_i32(r);
    switch (a->type) {
    case ATTR_FLOAT: a->f = get_f32(r); break;
    case ATTR_INT: a->i = get_i64(r); break;
    case ATTR_STRING: a->s = get_bytes(r, &a->s_len); break;
    case ATTR_FLOATS:
    case ATTR_INTS:
    case ATTR_STRINGS: return get_attr_lists(r, a);
    case ATTR_TENSOR:
    case ATTR_TENSORS: return get_attr_tensors(r, a);
    case ATTR_GRAPH:
    case ATTR_GRAPHS: return get_attr_graphs(r, a, owner);
    case ATTR_TYPE_PROTO:
    case ATTR_TYPE_PROTOS: {
        int32_t kind = get_i32(r), dtype = get_i32(r);
        if (r->st == CRUN_OK && ((kind != VALUE_TENSOR && kind != VALUE_SEQUENCE) || !dtype_is_valid(dtype)))
            return bad(r, "bad type attribute");
        a->tp_kind = (ValueKind)kind;
        a->tp_dtype = (crun_dtype)dtype;
        break;
    }
    default: return bad(r, "unknown attribute type");
    }
    return r->st == CRUN_OK;
}

static bool get_value(Reader *r, Graph *g)
{
    char *name = get_str(r);
    if (!name)
        return false;
    int id = graph_add_value(g, name);
    free(name);
    if (id < 0)
        return oom(r);
    Value *v = &g->values[id];
    int kind = get_u8(r);
    v->optional = get_u8(r) != 0;
    int32_t dtype = get_i32(r), rank = get_i32(r);
    if (r->st != CRUN_OK || (kind != VALUE_TENSOR && kind != VALUE_SEQUENCE) ||
        (dtype != CRUN_DTYPE_UNDEFINED && !dtype_is_valid(dtype)) || rank < -1 || rank > CRUN_MAX_RANK)
        return bad(r, "bad value type");
    v->kind = (ValueKind)kind;
    v->dtype = (crun_dtype)dtype;
    v->rank = rank;
    int64_t fixed[CRUN_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        v->dims[i] = get_i64(r);
        v->sym[i] = get_i32(r);
        if (r->st == CRUN_OK && (v->dims[i] < -1 || v->sym[i] < -1 || v->sym[i] >= r->n_syms))
            return bad(r, "bad value dims");
        fixed[i] = v->dims[i] < 0 ? 1 : v->dims[i];
    }
    if (rank > 0 && shape_numel(fixed, rank) < 0)
        return bad(r, "value dims too large");
    uint32_t flags = (uint32_t)get_i32(r);
    v->outer = get_i32(r);
    uint32_t known = VALUE_IS_INPUT | VALUE_IS_OUTPUT | VALUE_IS_OUTER | VALUE_IS_CONST | VALUE_PACKED;
    if (r->st != CRUN_OK || (flags & ~known))
        return bad(r, "bad value flags");
    if ((flags & VALUE_IS_OUTER) && (!g->parent || v->outer < 0 || v->outer >= g->parent->n_values ||
                                     (g->parent->values[v->outer].flags & VALUE_PACKED)))
        return bad(r, "bad outer value");
    if ((flags & VALUE_PACKED) && (g->parent || flags != (VALUE_IS_CONST | VALUE_PACKED)))
        return bad(r, "bad packed value");
    if (!(flags & VALUE_IS_CONST)) {
        v->flags = flags;
        return true;
    }
    int64_t numel = shape_numel(v->dims, v->rank);
    if (v->kind != VALUE_TENSOR || v->rank < 0 || numel < 0 || v->dtype == CRUN_DTYPE_UNDEFINED)
        return bad(r, "bad constant");
    for (int i = 0; i < rank; i++)
        v->sym[i] = -1;
    if (flags & VALUE_PACKED) {
        v->data = (void *)packed_away;
        v->flags = flags | VALUE_BORROWED;
        return true;
    }
    bool borrowed;
    v->data = get_data(r, v->dtype, numel, true, &borrowed);
    if (!v->data)
        return false;
    v->flags = flags | (borrowed ? VALUE_BORROWED : 0);
    return true;
}

static bool check_ids(Reader *r, const Graph *g, const int *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < -1 || ids[i] >= g->n_values)
            return bad(r, "value id out of range");
    return true;
}

static bool get_ids(Reader *r, const Graph *g, int **ids, int *n)
{
    if (!(*ids = get_table(r, 4, sizeof **ids, n)))
        return false;
    for (int i = 0; i < *n; i++)
        (*ids)[i] = get_i32(r);
    return r->st == CRUN_OK && check_ids(r, g, *ids, *n);
}

static const KernelVariant *find_kernel(const OpDesc *op, const char *name)
{
    for (const KernelVariant *k = op->kernels; k && k->name; k++)
        if (!strcmp(k->name, name))
            return k;
    return NULL;
}

static bool remember_node(Reader *r, Graph *g, int index)
{
    if (r->n_nodes == r->cap_nodes) {
        int cap = r->cap_nodes ? 2 * r->cap_nodes : 256;
        NodeRef *p = realloc(r->nodes, (size_t)cap * sizeof *p);
        if (!p)
            return oom(r);
        r->nodes = p;
        r->cap_nodes = cap;
    }
    r->nodes[r->n_nodes++] = (NodeRef){g, index, g->nodes[index].name};
    return true;
}

/* Node fields up to its attributes. */
static bool get_node_head(Reader *r, Graph *g, Node *n, char *kernel, size_t kernel_cap)
{
    if (!(n->name = get_str(r)) || !(n->op_type = get_str(r)) || !(n->domain = get_str(r)))
        return false;
    n->opset = get_i32(r);
    if (!get_ids(r, g, &n->in, &n->n_in) || !get_ids(r, g, &n->out, &n->n_out))
        return false;
    n->n_implicit = get_i32(r);
    int32_t act = get_i32(r);
    n->act.alpha = get_f32(r);
    n->act.beta = get_f32(r);
    n->act.affine = get_u8(r) != 0;
    n->act.mul = get_f32(r);
    n->act.add = get_f32(r);
    get_name(r, n->fused, sizeof n->fused);
    get_name(r, kernel, kernel_cap);
    if (r->st != CRUN_OK || n->n_implicit < 0 || n->n_implicit > n->n_in || act < ACT_NONE || act > ACT_ERF)
        return bad(r, "bad node");
    n->act.kind = (ActKind)act;
    return true;
}

static bool get_node(Reader *r, Graph *g)
{
    int index = graph_add_node(g);
    if (index < 0)
        return oom(r);
    Node *n = &g->nodes[index];
    char kernel[64];
    if (!get_node_head(r, g, n, kernel, sizeof kernel) || !remember_node(r, g, index))
        return false;
    int n_attrs;
    if (!(n->attrs = get_table(r, 8, sizeof *n->attrs, &n_attrs)))
        return false;
    /* n stays valid: a subgraph read here grows its own node array, not g's. */
    for (int a = 0; a < n_attrs; a++) {
        n->n_attrs = a + 1;
        if (!get_attr(r, &n->attrs[a], g))
            return false;
    }
    if (!(n->op = op_lookup(n->domain, n->op_type)))
        return r->st = diag_fail(r->d, CRUN_ERR_UNSUPPORTED, "compiled model uses op %s%s%s, which this build lacks",
                                 n->domain, n->domain[0] ? "." : "", n->op_type),
               false;
    if (kernel[0] && !(n->kernel = find_kernel(n->op, kernel)))
        return r->st = diag_fail(r->d, CRUN_ERR_UNSUPPORTED,
                                 "node '%s' (%s) was compiled for kernel %s, which this build lacks", n->name,
                                 n->op_type, kernel),
               false;
    return (r->st = op_parse_optimised_node(n, r->d)) == CRUN_OK;
}

static bool get_io(Reader *r, const Graph *g, GraphIO **io, int *n)
{
    *n = 0;
    int count;
    if (!(*io = get_table(r, 12, sizeof **io, &count)))
        return false;
    for (int i = 0; i < count; i++) {
        GraphIO *e = &(*io)[i];
        if (!(e->name = get_str(r)))
            return false;
        *n = i + 1;
        e->value = get_i32(r);
        e->parent_input = get_i32(r);
        if (r->st != CRUN_OK || e->value < 0 || e->value >= g->n_values || e->parent_input < -1)
            return bad(r, "bad graph input or output");
    }
    return true;
}

static bool get_graph_body(Reader *r, Graph *g)
{
    if (!(g->name = get_str(r)))
        return false;
    int n_values = get_count(r, 22);
    for (int v = 0; v < n_values && r->st == CRUN_OK; v++)
        get_value(r, g);
    int n_nodes = get_count(r, 40);
    for (int i = 0; i < n_nodes && r->st == CRUN_OK; i++)
        get_node(r, g);
    if (r->st != CRUN_OK || !get_io(r, g, &g->inputs, &g->n_inputs) || !get_io(r, g, &g->outputs, &g->n_outputs))
        return false;
    if (g->n_outputs == 0)
        return bad(r, "a graph without outputs");
    /* The file holds a sorted graph; sorting checks it (cycles, values defined twice or
     * never) and must leave the order, which the pack index refers to, as it is. */
    if ((r->st = graph_toposort(g, r->d)) != CRUN_OK)
        return false;
    for (int i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].g == g && g->nodes[r->nodes[i].index].name != r->nodes[i].name)
            return bad(r, "nodes out of order");
    return true;
}

static Graph *get_graph(Reader *r, Graph *parent)
{
    if (++r->depth > MAX_GRAPH_DEPTH) {
        bad(r, "subgraphs nested too deep");
        return NULL;
    }
    Graph *g = graph_new(parent);
    if (!g)
        oom(r);
    else if (!get_graph_body(r, g)) {
        /* Drop this graph's nodes from the pack index before freeing them. */
        int keep = 0;
        for (int i = 0; i < r->n_nodes; i++)
            if (r->nodes[i].g != g)
                r->nodes[keep++] = r->nodes[i];
        r->n_nodes = keep;
        graph_free(g);
        g = NULL;
    }
    r->depth--;
    return g;
}

static bool get_model_facts(Reader *r, crun_model *m)
{
    m->ir_version = get_i64(r);
    m->opset = get_i64(r);
    if (!(m->producer = get_str(r)))
        return false;
    int n;
    if (!(m->meta = get_table(r, 8, sizeof *m->meta, &n)))
        return false;
    for (int i = 0; i < n; i++) {
        if (!(m->meta[i].key = get_str(r)) || !(m->meta[i].value = get_str(r)))
            return free(m->meta[i].key), false;
        m->n_meta = i + 1;
    }
    if (!(m->ops = get_table(r, 12, sizeof *m->ops, &n)))
        return false;
    for (int i = 0; i < n; i++) {
        if (!(m->ops[i].op_type = get_str(r)))
            return false;
        m->n_ops = i + 1;
        m->ops[i].count = get_i64(r);
    }
    m->node_count = get_i64(r);
    m->param_count = get_i64(r);
    m->param_bytes = get_i64(r);
    uint32_t fp16 = (uint32_t)get_i32(r);
    if (r->st == CRUN_OK && fp16 > 1)
        return bad(r, "bad float16 flag");
    m->graph->fp16_weights = fp16 == 1;
    return r->st == CRUN_OK;
}

/* Symbols and opsets into the main graph (before its body: values refer to symbols). */
static bool get_root_tables(Reader *r, Graph *g)
{
    int n;
    if (!(g->syms = get_table(r, 4, sizeof *g->syms, &n)))
        return false;
    for (int i = 0; i < n; i++) {
        if (!(g->syms[i] = get_str(r)))
            return false;
        g->n_syms = r->n_syms = i + 1;
    }
    if (!(g->opsets = get_table(r, 12, sizeof *g->opsets, &n)))
        return false;
    for (int i = 0; i < n; i++) {
        if (!(g->opsets[i].domain = get_str(r)))
            return false;
        g->n_opsets = i + 1;
        g->opsets[i].version = get_i64(r);
    }
    return true;
}

/* Where a packed-away weight may go: the kernels that set prep_packed_away for it, whose
 * shape inference reads its dims only. */
static bool packed_slot_ok(const Node *n, int k)
{
    static const struct {
        const char *domain, *op;
        int slot;
    } ok[] = {{"", "Conv", 1},        {"", "Gemm", 1},          {"", "MatMul", 1},
              {"", "QLinearConv", 3}, {"", "QLinearMatMul", 3}, {"com.microsoft", "MatMulNBits", 1}};
    for (size_t i = 0; i < CRUN_ARRAY_LEN(ok); i++)
        if (k == ok[i].slot && !strcmp(n->op_type, ok[i].op) && !strcmp(n->domain, ok[i].domain) && n->kernel)
            return true;
    return false;
}

static bool check_packed_uses(Reader *r, const Graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0 && (g->values[v].flags & VALUE_PACKED) && !packed_slot_ok(&g->nodes[i], k))
                return bad(r, "packed weights where no kernel takes them");
        }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->values[g->outputs[i].value].flags & VALUE_PACKED)
            return bad(r, "packed weights as a graph output");
    return true;
}

static bool get_packs(Reader *r, PackCache *c)
{
    int n = get_count(r, 20);
    for (int i = 0; i < n && r->st == CRUN_OK; i++) {
        int32_t id = get_i32(r);
        char tag[48];
        get_name(r, tag, sizeof tag);
        size_t bytes = SIZE_MAX;
        const void *data = get_blob(r, &bytes);
        if (r->st != CRUN_OK)
            return false;
        if (id < 0 || id >= r->n_nodes)
            return bad(r, "pack block of no node");
        const NodeRef *ref = &r->nodes[id];
        if (!packcache_put_borrowed(c, &ref->g->nodes[ref->index], tag, bytes, data))
            return oom(r);
    }
    return r->st == CRUN_OK;
}

/* The compiled plan's arena offsets (see put_offsets), kept for planning to check. */
static bool get_offsets(Reader *r, Graph *g)
{
    g->compiled_inputs = get_u64(r);
    int n = get_count(r, 8);
    if (r->st != CRUN_OK)
        return false;
    if (n != g->n_values)
        return bad(r, "arena layout of another graph");
    if (!(g->compiled_offsets = malloc((size_t)n * sizeof *g->compiled_offsets + 1)))
        return oom(r);
    for (int v = 0; v < n; v++) {
        uint64_t at = get_u64(r);
        g->compiled_offsets[v] = at && at - 1 < SIZE_MAX ? (size_t)(at - 1) : SIZE_MAX;
    }
    return r->st == CRUN_OK;
}

crun_status crunfile_verify_weights(const void *data, size_t size, Diag *d)
{
    CrunFileHeader h;
    crun_status st = crunfile_read_header(data, size, &h, d);
    const uint8_t *p = data;
    if (st == CRUN_OK && crunfile_checksum(p + h.blobs_offset, (size_t)h.blobs_bytes) != h.blobs_sum)
        st = diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model is corrupt (weights checksum mismatch)");
    return st;
}

crun_status crunfile_load(const void *data, size_t size, crun_model *m, Diag *d)
{
    CrunFileHeader h;
    if ((uintptr_t)data % CRUNFILE_BLOB_ALIGN)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "compiled model image is not 64-byte aligned");
    crun_status st = crunfile_read_header(data, size, &h, d);
    if (st != CRUN_OK)
        return st;
    const uint8_t *p = data;
    /* Everything that steers the loader is checked; the weights are not read at all (that
     * would cost a pass over the whole file): crunfile_verify_weights checks them. */
    if (crunfile_checksum(p + h.tables_offset, (size_t)h.tables_bytes) != h.tables_sum && !CRUNFILE_FUZZING)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model is corrupt (tables checksum mismatch)");
    Reader r = {.p = p + h.tables_offset, .n = (size_t)h.tables_bytes, .blobs = p + h.blobs_offset,
                .blobs_bytes = h.blobs_bytes, .d = d};
    Graph *g = m->graph = graph_new(NULL);
    if (!g || !(g->packs = packcache_new()))
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory loading the compiled model");
    if (get_model_facts(&r, m) && get_root_tables(&r, g) && get_graph_body(&r, g) && check_packed_uses(&r, g))
        if (get_packs(&r, g->packs))
            get_offsets(&r, g);
    if (r.st == CRUN_OK && r.at != r.n)
        bad(&r, "bytes after the last record");
    free(r.nodes);
    g->isa_pinned = true;
    g->isa = (int)h.isa;
    g->compiled_threads = h.threads;
    m->compiled_isa = (int)h.isa;
    m->compiled_threads = h.threads;
    m->compiled_arena = (size_t)h.arena_bytes;
    m->compiled_workspace = (size_t)h.workspace_bytes;
    return r.st;
}
