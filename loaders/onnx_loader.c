/* onnx_loader.c - ModelProto to the graph IR. Every field inference needs is checked
 * here; after this file nothing sees protobuf types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_functions.h"
#include "loaders/onnx_tensor.h"
#include "onnx.pb-c.h"
#include "ops/registry.h"
#include "runtime/model.h"

/* Deepest nesting of subgraphs (If inside Loop inside ...) crun accepts. */
#define MAX_SUBGRAPH_DEPTH 32

typedef struct LoadCtx {
    struct crun_model *model; /* gets the op histogram of the main graph */
    const Onnx__ModelProto *mp; /* for its model-local functions */
    const char *dir;
    Diag *d;
    int depth;
    char unsupported[256]; /* "Foo, ai.x.Bar" */
    int n_unsupported;
} LoadCtx;

static const char *nz(const char *s) { return s ? s : ""; }

static crun_status load_graph(Onnx__GraphProto *gp, Graph *g, LoadCtx *lc);
static crun_status add_io(GraphIO **arr, int *n, const char *name, int value, int parent_input, LoadCtx *lc);

/* ---- values ---- */

/* Finds name in g, else captures it from an enclosing graph (creating an outer value). */
static int resolve_value(Graph *g, const char *name)
{
    int v = graph_find_value(g, name);
    if (v >= 0 || !g->parent)
        return v;
    int pv = resolve_value(g->parent, name);
    if (pv < 0)
        return -1;
    v = graph_add_value(g, name);
    if (v >= 0) {
        g->values[v].flags |= VALUE_IS_OUTER;
        g->values[v].outer = pv;
    }
    return v;
}

static crun_status load_type(const Onnx__TypeProto *tp, Graph *g, Value *v, LoadCtx *lc)
{
    /* An empty TypeProto (exporters write these in value_info) says nothing: inference decides. */
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return CRUN_OK;
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE) {
        v->optional = true;
        return tp->optional_type ? load_type(tp->optional_type->elem_type, g, v, lc) : CRUN_OK;
    }
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE) {
        v->kind = VALUE_SEQUENCE;
        /* The element type, when declared, is the sequence's dtype. */
        const Onnx__TypeProto *et = tp->sequence_type ? tp->sequence_type->elem_type : NULL;
        if (et && et->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && et->tensor_type &&
            dtype_is_valid(et->tensor_type->elem_type))
            v->dtype = (crun_dtype)et->tensor_type->elem_type;
        return CRUN_OK;
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "value '%s' has a type crun does not support (map or sparse)",
                         v->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        if (!dtype_is_valid(tt->elem_type))
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "value '%s' has an invalid element type %d", v->name,
                             (int)tt->elem_type);
        v->dtype = (crun_dtype)tt->elem_type;
    }
    if (!tt->shape)
        return CRUN_OK;
    if (tt->shape->n_dim > CRUN_MAX_RANK)
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "value '%s' has rank %zu, crun supports at most %d", v->name,
                         tt->shape->n_dim, CRUN_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[i];
        v->dims[i] = -1;
        v->sym[i] = -1;
        if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (dm->dim_value < 0 || dm->dim_value > CRUN_MAX_NUMEL)
                return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "value '%s' has invalid dim %lld", v->name,
                                 (long long)dm->dim_value);
            v->dims[i] = dm->dim_value;
        } else if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dm->dim_param &&
                   dm->dim_param[0]) {
            v->sym[i] = graph_intern_sym(g, dm->dim_param);
            if (v->sym[i] < 0)
                return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return CRUN_OK;
}

/* Makes value v a constant holding t (takes ownership of t's data). */
static void value_set_const(Value *v, Tensor *t)
{
    v->flags |= VALUE_IS_CONST;
    v->kind = VALUE_TENSOR;
    v->dtype = t->dtype;
    v->rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        v->dims[i] = t->dims[i];
        v->sym[i] = -1;
    }
    v->data = t->data;
    t->data = NULL;
}

/* ---- attributes ---- */

static crun_status copy_strings(ProtobufCBinaryData *src, size_t n, char ***dst, LoadCtx *lc)
{
    *dst = calloc(n ? n : 1, sizeof **dst);
    if (!*dst)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!((*dst)[i] = str_ndup((const char *)src[i].data, src[i].len)))
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    return CRUN_OK;
}

static crun_status load_subgraph(Onnx__GraphProto *gp, Graph *parent, Graph **out, LoadCtx *lc)
{
    if (lc->depth >= MAX_SUBGRAPH_DEPTH)
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "subgraphs nest deeper than %d levels", MAX_SUBGRAPH_DEPTH);
    Graph *sg = graph_new(parent);
    if (!sg)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    *out = sg;
    lc->depth++;
    crun_status st = load_graph(gp, sg, lc);
    lc->depth--;
    return st;
}

/* The values sub captures from g become inputs of sub (after its declared ones) and
 * implicit inputs of node n, so ordering, liveness and binding treat them like any input.
 * Captured constants (weights) are shared instead: the subgraph sees them as its own
 * constants, with no copy at run time. */
static crun_status add_implicit_inputs(const Graph *g, Node *n, Graph *sub, LoadCtx *lc)
{
    for (int v = 0; v < sub->n_values; v++) {
        Value *sv = &sub->values[v];
        if (!(sv->flags & VALUE_IS_OUTER) || (sv->flags & VALUE_IS_CONST))
            continue;
        const Value *pv = &g->values[sv->outer];
        if (pv->flags & VALUE_IS_CONST) {
            sv->flags |= VALUE_IS_CONST | VALUE_BORROWED;
            sv->dtype = pv->dtype;
            sv->rank = pv->rank;
            memcpy(sv->dims, pv->dims, sizeof sv->dims);
            sv->data = pv->data;
            continue;
        }
        int k = n->n_in - n->n_implicit;
        while (k < n->n_in && n->in[k] != sv->outer)
            k++;
        if (k == n->n_in) {
            if (!node_set_input(n, k, sv->outer))
                return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
            n->n_implicit++;
        }
        sv->flags |= VALUE_IS_INPUT;
        crun_status st = add_io(&sub->inputs, &sub->n_inputs, sv->name, v, k, lc);
        if (st != CRUN_OK)
            return st;
    }
    return CRUN_OK;
}

static int attr_list_len(const Onnx__AttributeProto *ap, AttrType t)
{
    switch (t) {
    case ATTR_FLOATS: return (int)ap->n_floats;
    case ATTR_INTS: return (int)ap->n_ints;
    case ATTR_STRINGS: return (int)ap->n_strings;
    case ATTR_TENSORS: return (int)ap->n_tensors;
    case ATTR_GRAPHS: return (int)ap->n_graphs;
    default: return 0;
    }
}

/* The type field is optional in old models: infer it from which field is set. */
static AttrType attr_type_of(const Onnx__AttributeProto *ap)
{
    if (ap->has_type && ap->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
        return (AttrType)ap->type;
    if (ap->has_f)
        return ATTR_FLOAT;
    if (ap->has_i)
        return ATTR_INT;
    if (ap->has_s)
        return ATTR_STRING;
    if (ap->t)
        return ATTR_TENSOR;
    if (ap->g)
        return ATTR_GRAPH;
    if (ap->n_floats)
        return ATTR_FLOATS;
    if (ap->n_ints)
        return ATTR_INTS;
    if (ap->n_strings)
        return ATTR_STRINGS;
    if (ap->n_tensors)
        return ATTR_TENSORS;
    if (ap->n_graphs)
        return ATTR_GRAPHS;
    if (ap->tp)
        return ATTR_TYPE_PROTO;
    return ATTR_UNDEFINED;
}

static crun_status load_attr(const Onnx__AttributeProto *ap, Graph *g, Attr *a, const char *node_name, LoadCtx *lc)
{
    a->name = str_dup(nz(ap->name));
    if (!a->name)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (ap->ref_attr_name && ap->ref_attr_name[0])
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "node '%s': attribute '%s' refers to a function attribute",
                         node_name, a->name);
    a->type = attr_type_of(ap);
    a->n = attr_list_len(ap, a->type);
    char what[200];
    snprintf(what, sizeof what, "node '%s' attribute '%s'", node_name, a->name);
    switch (a->type) {
    case ATTR_FLOAT: a->f = ap->f; return CRUN_OK;
    case ATTR_INT: a->i = ap->i; return CRUN_OK;
    case ATTR_STRING:
        a->s_len = ap->s.len;
        a->s = str_ndup(ap->s.data ? (const char *)ap->s.data : "", ap->s.len);
        return a->s ? CRUN_OK : diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    case ATTR_FLOATS:
        a->floats = malloc((size_t)(a->n ? a->n : 1) * sizeof(float));
        if (!a->floats)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        if (a->n)
            memcpy(a->floats, ap->floats, (size_t)a->n * sizeof(float));
        return CRUN_OK;
    case ATTR_INTS:
        a->ints = malloc((size_t)(a->n ? a->n : 1) * sizeof(int64_t));
        if (!a->ints)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        if (a->n)
            memcpy(a->ints, ap->ints, (size_t)a->n * sizeof(int64_t));
        return CRUN_OK;
    case ATTR_STRINGS: return copy_strings(ap->strings, ap->n_strings, &a->strings, lc);
    case ATTR_TENSOR:
    case ATTR_TENSORS: {
        int n = a->type == ATTR_TENSOR ? 1 : a->n;
        if (a->type == ATTR_TENSOR && !ap->t)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "%s: tensor attribute without a tensor", what);
        a->tensors = calloc((size_t)(n ? n : 1), sizeof *a->tensors);
        if (!a->tensors)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; i < n; i++) {
            const Onnx__TensorProto *tp = a->type == ATTR_TENSOR ? ap->t : ap->tensors[i];
            crun_status st = onnx_tensor_load(tp, lc->dir, what, &a->tensors[i].t, lc->d);
            if (st != CRUN_OK)
                return st;
        }
        return CRUN_OK;
    }
    case ATTR_GRAPH:
    case ATTR_GRAPHS: {
        int n = a->type == ATTR_GRAPH ? 1 : a->n;
        if (a->type == ATTR_GRAPH && !ap->g)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "%s: graph attribute without a graph", what);
        a->graphs = calloc((size_t)(n ? n : 1), sizeof *a->graphs);
        if (!a->graphs)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; i < n; i++) {
            crun_status st = load_subgraph(a->type == ATTR_GRAPH ? ap->g : ap->graphs[i], g, &a->graphs[i], lc);
            if (st != CRUN_OK)
                return st;
        }
        return CRUN_OK;
    }
    case ATTR_TYPE_PROTO: {
        /* Only what ops need of a type: tensor or sequence, and the element type. */
        Value tmp = {.name = a->name, .rank = -1};
        crun_status st = ap->tp ? load_type(ap->tp, g, &tmp, lc) : CRUN_OK;
        a->tp_kind = tmp.kind;
        a->tp_dtype = tmp.dtype;
        return st;
    }
    case ATTR_UNDEFINED:
        return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "%s has no value", what);
    default:
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "%s has type %d (sparse tensor or type proto), not supported",
                         what, (int)a->type);
    }
}

/* ---- Constant nodes become constant values ---- */

static crun_status constant_from_attr(const Onnx__NodeProto *np, Tensor *t, const char *node_name, LoadCtx *lc)
{
    if (np->n_attribute != 1 || !np->attribute[0])
        return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "node '%s' (Constant) must have exactly one attribute",
                         node_name);
    const Onnx__AttributeProto *ap = np->attribute[0];
    const char *an = nz(ap->name);
    char what[200];
    snprintf(what, sizeof what, "node '%s' (Constant)", node_name);
    memset(t, 0, sizeof *t);
    if (strcmp(an, "value") == 0 && ap->t)
        return onnx_tensor_load(ap->t, lc->dir, what, t, lc->d);
    size_t n = 1;
    bool list = false;
    if (strcmp(an, "value_float") == 0 || strcmp(an, "value_int") == 0 || strcmp(an, "value_string") == 0) {
        t->rank = 0;
    } else if (strcmp(an, "value_floats") == 0 || strcmp(an, "value_ints") == 0 || strcmp(an, "value_strings") == 0) {
        list = true;
        n = an[6] == 'f' ? ap->n_floats : an[6] == 'i' ? ap->n_ints : ap->n_strings;
        t->rank = 1;
        t->dims[0] = (int64_t)n;
    } else {
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "%s: attribute '%s' is not supported", what, an);
    }
    char kind = an[6];
    t->dtype = kind == 'f' ? CRUN_DTYPE_FLOAT : kind == 'i' ? CRUN_DTYPE_INT64 : CRUN_DTYPE_STRING;
    if (kind == 's') {
        char **s = NULL;
        ProtobufCBinaryData one = ap->s;
        crun_status st = copy_strings(list ? ap->strings : &one, n, &s, lc);
        if (st != CRUN_OK) {
            free(s);
            return st;
        }
        /* Strings of constants are owned like tensor strings (array via mem_alloc). */
        char **arr = mem_calloc_aligned(n * sizeof *arr);
        if (!arr) {
            for (size_t i = 0; i < n; i++)
                free(s[i]);
            free(s);
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
        memcpy(arr, s, n * sizeof *arr);
        free(s);
        t->data = arr;
        return CRUN_OK;
    }
    size_t es = dtype_size(t->dtype);
    t->data = mem_calloc_aligned(n * es);
    if (!t->data)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (kind == 'f')
        memcpy(t->data, list ? ap->floats : &ap->f, n * es);
    else
        memcpy(t->data, list ? ap->ints : &ap->i, n * es);
    return CRUN_OK;
}

/* ---- nodes ---- */

static void note_unsupported(LoadCtx *lc, const char *domain, const char *op)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", domain, *domain ? "." : "", op);
    /* Report each op type once. */
    const char *p = lc->unsupported;
    size_t len = strlen(name);
    while ((p = strstr(p, name)) != NULL) {
        if ((p == lc->unsupported || p[-1] == ' ') && (p[len] == ',' || p[len] == 0))
            return;
        p += len;
    }
    size_t used = strlen(lc->unsupported);
    snprintf(lc->unsupported + used, sizeof lc->unsupported - used, "%s%s", used ? ", " : "", name);
    lc->n_unsupported++;
}

static crun_status count_op(LoadCtx *lc, const char *op_type)
{
    struct crun_model *m = lc->model;
    m->node_count++;
    for (int i = 0; i < m->n_ops; i++)
        if (strcmp(m->ops[i].op_type, op_type) == 0) {
            m->ops[i].count++;
            return CRUN_OK;
        }
    OpCount *p = realloc(m->ops, (size_t)(m->n_ops + 1) * sizeof *p);
    if (!p)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    m->ops = p;
    p[m->n_ops].op_type = str_dup(op_type);
    p[m->n_ops].count = 1;
    if (!p[m->n_ops].op_type)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    m->n_ops++;
    return CRUN_OK;
}

static crun_status add_node(const Onnx__NodeProto *np, int index, Graph *g, LoadCtx *lc)
{
    const char *op_type = nz(np->op_type);
    const char *domain = nz(np->domain);
    if (lc->depth == 0 && count_op(lc, op_type) != CRUN_OK)
        return lc->d->status;
    char gen_name[96];
    snprintf(gen_name, sizeof gen_name, "%s_%d", op_type, index);
    const char *name = np->name && np->name[0] ? np->name : gen_name;
    if (!op_type[0])
        return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "node %d has no op_type", index);
    if (strcmp(op_type, "Constant") == 0 && (!domain[0] || strcmp(domain, "ai.onnx") == 0)) {
        if (np->n_output != 1 || !np->output[0] || !np->output[0][0])
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "node '%s' (Constant) must have one output", name);
        int v = graph_find_value(g, np->output[0]);
        Tensor t;
        crun_status st = constant_from_attr(np, &t, name, lc);
        if (st != CRUN_OK)
            return st;
        value_set_const(&g->values[v], &t);
        return CRUN_OK;
    }
    int ni = graph_add_node(g);
    if (ni < 0)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    Node *n = &g->nodes[ni];
    n->name = str_dup(name);
    n->op_type = str_dup(op_type);
    n->domain = str_dup(domain);
    n->in = malloc((np->n_input ? np->n_input : 1) * sizeof(int));
    n->out = malloc((np->n_output ? np->n_output : 1) * sizeof(int));
    n->attrs = calloc(np->n_attribute ? np->n_attribute : 1, sizeof(Attr));
    if (!n->name || !n->op_type || !n->domain || !n->in || !n->out || !n->attrs)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (np->n_input > 4096 || np->n_output > 4096)
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "node '%s' has too many inputs or outputs", name);
    n->n_in = (int)np->n_input;
    n->n_out = (int)np->n_output;
    for (int k = 0; k < n->n_out; k++) {
        const char *on = nz(np->output[k]);
        n->out[k] = on[0] ? graph_find_value(g, on) : -1;
    }
    for (int k = 0; k < n->n_in; k++) {
        const char *in = nz(np->input[k]);
        n->in[k] = -1;
        if (!in[0])
            continue;
        n->in[k] = resolve_value(g, in);
        if (n->in[k] < 0)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "node '%s' (%s) uses value '%s', which nothing defines",
                             name, op_type, in);
    }
    for (size_t a = 0; a < np->n_attribute; a++) {
        if (!np->attribute[a])
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "node '%s' has an empty attribute", name);
        crun_status st = load_attr(np->attribute[a], g, &n->attrs[a], name, lc);
        n->n_attrs = (int)a + 1;
        /* g->nodes does not move while a subgraph loads (only its own nodes grow). */
        const Attr *at = &n->attrs[a];
        int n_sub = at->type == ATTR_GRAPH ? 1 : at->type == ATTR_GRAPHS ? at->n : 0;
        for (int k = 0; st == CRUN_OK && k < n_sub && at->graphs[k]; k++)
            st = add_implicit_inputs(g, n, at->graphs[k], lc);
        if (st != CRUN_OK)
            return st;
    }
    int64_t opset = graph_opset(g, domain);
    if (opset < 0)
        return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "node '%s' (%s) uses domain '%s', which the model does not import",
                         name, op_type, domain);
    n->opset = (int)opset;
    n->op = op_lookup(domain, op_type);
    if (!n->op) {
        note_unsupported(lc, domain, op_type);
        return CRUN_OK;
    }
    return op_parse_node(n, lc->d);
}

/* Registers every name a node defines, so inputs can be resolved in any node order. */
static crun_status declare_outputs(const NodeList *nodes, Graph *g, LoadCtx *lc)
{
    for (size_t i = 0; i < nodes->n; i++) {
        const Onnx__NodeProto *np = nodes->v[i];
        if (!np)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "node %zu is empty", i);
        for (size_t k = 0; k < np->n_output; k++) {
            const char *on = nz(np->output[k]);
            if (!on[0])
                continue;
            if (graph_find_value(g, on) >= 0)
                return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "value '%s' is defined twice (again by node '%s')",
                                 on, nz(np->name));
            if (graph_add_value(g, on) < 0)
                return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return CRUN_OK;
}

static crun_status load_initializers(Onnx__GraphProto *gp, Graph *g, LoadCtx *lc)
{
    if (gp->n_sparse_initializer)
        return diag_fail(lc->d, CRUN_ERR_UNSUPPORTED, "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        const char *name = tp ? nz(tp->name) : "";
        if (!name[0])
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "initializer %zu has no name", i);
        if (graph_find_value(g, name) >= 0)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "initializer '%s' is defined twice", name);
        char what[200];
        snprintf(what, sizeof what, "initializer '%s'", name);
        Tensor t;
        bool borrowed;
        crun_status st = onnx_tensor_borrow(tp, lc->dir, what, &t, &borrowed, lc->d);
        if (st != CRUN_OK)
            return st;
        int v = graph_add_value(g, name);
        if (v < 0) {
            if (!borrowed)
                tensor_data_free(t.dtype, t.data, tensor_numel(&t));
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
        value_set_const(&g->values[v], &t);
        if (borrowed)
            g->values[v].flags |= VALUE_BORROWED;
    }
    return CRUN_OK;
}

static crun_status add_io(GraphIO **arr, int *n, const char *name, int value, int parent_input, LoadCtx *lc)
{
    GraphIO *p = realloc(*arr, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    *arr = p;
    p[*n].value = value;
    p[*n].parent_input = parent_input;
    p[*n].name = str_dup(name);
    if (!p[*n].name)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    (*n)++;
    return CRUN_OK;
}

static crun_status load_inputs(const Onnx__GraphProto *gp, Graph *g, LoadCtx *lc)
{
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = vi ? nz(vi->name) : "";
        if (!name[0])
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "graph input %zu has no name", i);
        int v = graph_find_value(g, name);
        /* Before IR version 4 initializers were listed as inputs too; they stay constants. */
        if (v >= 0 && (g->values[v].flags & VALUE_IS_CONST))
            continue;
        if (v >= 0)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "graph input '%s' is listed twice", name);
        v = graph_add_value(g, name);
        if (v < 0)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        g->values[v].flags |= VALUE_IS_INPUT;
        crun_status st = load_type(vi->type, g, &g->values[v], lc);
        if (st == CRUN_OK)
            st = add_io(&g->inputs, &g->n_inputs, name, v, -1, lc);
        if (st != CRUN_OK)
            return st;
    }
    return CRUN_OK;
}

static crun_status load_outputs(const Onnx__GraphProto *gp, Graph *g, LoadCtx *lc)
{
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = vi ? nz(vi->name) : "";
        int v = name[0] ? resolve_value(g, name) : -1;
        if (v < 0)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "graph output '%s' is not defined by any node", name);
        Value *val = &g->values[v];
        val->flags |= VALUE_IS_OUTPUT;
        /* The declared type describes the output to users (crun info, the API); the
         * planner computes the real one. Inputs and constants keep their own. */
        crun_status st = CRUN_OK;
        if (!(val->flags & (VALUE_IS_INPUT | VALUE_IS_CONST | VALUE_IS_OUTER)))
            st = load_type(vi->type, g, val, lc);
        if (st == CRUN_OK)
            st = add_io(&g->outputs, &g->n_outputs, name, v, -1, lc);
        if (st != CRUN_OK)
            return st;
    }
    if (g->n_outputs == 0)
        return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "the graph has no outputs");
    return CRUN_OK;
}

static crun_status load_graph(Onnx__GraphProto *gp, Graph *g, LoadCtx *lc)
{
    g->name = str_dup(nz(gp->name));
    if (!g->name)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    crun_status st = load_initializers(gp, g, lc);
    if (st == CRUN_OK)
        st = load_inputs(gp, g, lc);
    NodeList nodes = {0};
    if (st == CRUN_OK)
        st = onnx_expand_functions(lc->mp, gp->node, gp->n_node, &nodes, lc->d);
    if (st == CRUN_OK)
        st = declare_outputs(&nodes, g, lc);
    for (size_t i = 0; st == CRUN_OK && i < nodes.n; i++)
        st = add_node(nodes.v[i], (int)i, g, lc);
    node_list_free(&nodes);
    if (st == CRUN_OK)
        st = load_outputs(gp, g, lc);
    if (st == CRUN_OK && !lc->n_unsupported)
        st = graph_toposort(g, lc->d);
    return st;
}

/* ---- the model ---- */

static crun_status load_opsets(const Onnx__ModelProto *mp, Graph *g, LoadCtx *lc)
{
    g->opsets = calloc(mp->n_opset_import + 1, sizeof *g->opsets);
    if (!g->opsets)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    bool has_default = false;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = mp->opset_import[i];
        if (!os)
            continue;
        const char *dom = nz(os->domain);
        if (strcmp(dom, "ai.onnx") == 0)
            dom = "";
        if (!os->has_version || os->version < 1 || os->version > 1000)
            return diag_fail(lc->d, CRUN_ERR_INVALID_MODEL, "opset import of domain '%s' has invalid version %lld",
                             dom, (long long)os->version);
        g->opsets[g->n_opsets].domain = str_dup(dom);
        if (!g->opsets[g->n_opsets].domain)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        g->opsets[g->n_opsets++].version = os->version;
        has_default |= dom[0] == 0;
    }
    /* Models from before opset imports existed (IR version < 3) use opset 1. */
    if (!has_default) {
        g->opsets[g->n_opsets].domain = str_dup("");
        if (!g->opsets[g->n_opsets].domain)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        g->opsets[g->n_opsets++].version = 1;
    }
    return CRUN_OK;
}

static crun_status load_metadata(const Onnx__ModelProto *mp, struct crun_model *m, LoadCtx *lc)
{
    char prod[256];
    snprintf(prod, sizeof prod, "%s%s%s", nz(mp->producer_name), mp->producer_version ? " " : "",
             nz(mp->producer_version));
    m->producer = str_dup(prod);
    m->meta = calloc(mp->n_metadata_props + 1, sizeof *m->meta);
    if (!m->producer || !m->meta)
        return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
        if (!e)
            continue;
        m->meta[m->n_meta].key = str_dup(nz(e->key));
        m->meta[m->n_meta].value = str_dup(nz(e->value));
        if (!m->meta[m->n_meta].key || !m->meta[m->n_meta].value)
            return diag_fail(lc->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        m->n_meta++;
    }
    return CRUN_OK;
}

crun_status onnx_load_model(const void *data, size_t size, const char *dir, struct crun_model *m, Diag *d)
{
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&onnx_allocator, size, data);
    if (!mp && mem_cap_hit())
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory parsing the model");
    if (!mp)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "not a valid ONNX model (the protobuf data does not parse)");
    LoadCtx lc = {.model = m, .mp = mp, .dir = dir, .d = d};
    crun_status st = CRUN_OK;
    if (!mp->graph)
        st = diag_fail(d, CRUN_ERR_INVALID_MODEL, "the model has no graph");
    else if (!mp->has_ir_version || mp->ir_version < 1)
        st = diag_fail(d, CRUN_ERR_INVALID_MODEL, "the model has no IR version (is this an ONNX file?)");
    if (st == CRUN_OK) {
        m->ir_version = mp->ir_version;
        m->graph = graph_new(NULL);
        if (!m->graph)
            st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (st == CRUN_OK)
        st = load_opsets(mp, m->graph, &lc);
    if (st == CRUN_OK) {
        m->opset = graph_opset(m->graph, "");
        st = load_metadata(mp, m, &lc);
    }
    if (st == CRUN_OK)
        st = load_graph(mp->graph, m->graph, &lc);
    if (st == CRUN_OK && lc.n_unsupported)
        st = diag_fail(d, CRUN_ERR_UNSUPPORTED, "unsupported op%s: %s", lc.n_unsupported > 1 ? "s" : "",
                       lc.unsupported);
    /* Initializers point into the unpacked message, so it lives as long as the model. */
    m->proto = mp;
    return st;
}

static void list_graph_ops(const Onnx__GraphProto *g, void (*fn)(void *, const char *, const char *), void *ctx)
{
    for (size_t i = 0; g && i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n)
            continue;
        fn(ctx, nz(n->domain), nz(n->op_type));
        for (size_t a = 0; a < n->n_attribute; a++) {
            const Onnx__AttributeProto *at = n->attribute[a];
            if (at && at->g)
                list_graph_ops(at->g, fn, ctx);
            for (size_t k = 0; at && k < at->n_graphs; k++)
                list_graph_ops(at->graphs[k], fn, ctx);
        }
    }
}

void onnx_list_ops(const void *proto, void (*fn)(void *ctx, const char *domain, const char *op), void *ctx)
{
    const Onnx__ModelProto *mp = proto;
    if (!mp)
        return;
    list_graph_ops(mp->graph, fn, ctx);
    for (size_t f = 0; f < mp->n_functions; f++)
        for (size_t i = 0; mp->functions[f] && i < mp->functions[f]->n_node; i++)
            if (mp->functions[f]->node[i])
                fn(ctx, nz(mp->functions[f]->node[i]->domain), nz(mp->functions[f]->node[i]->op_type));
}

void onnx_free_proto(void *proto)
{
    if (proto)
        onnx__model_proto__free_unpacked(proto, &onnx_allocator);
}
