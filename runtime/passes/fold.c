/* fold.c - evaluates nodes whose inputs are all constants, once, at load. */
#include <stdlib.h>

#include "runtime/eval.h"
#include "runtime/passes/passes.h"

static bool has_subgraph(const Node *n)
{
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == ATTR_GRAPH || n->attrs[a].type == ATTR_GRAPHS)
            return true;
    return false;
}

static bool foldable(const Graph *g, const Node *n)
{
    if (n->op->flags & OPF_NO_FOLD || has_subgraph(n))
        return false;
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0 && !value_is_const(g, n->in[k]))
            return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0 && g->values[n->out[k]].kind != VALUE_TENSOR)
            return false;
    return true;
}

/* A weight stored as float16 and cast to float32 (what `crun convert --fp16` writes, as do
 * other converters): such models compute in float16 where the CPU can. Tables of fewer
 * than 16 values are not weights. */
static bool widens_fp16_weight(const Node *n, const Tensor *x, const Tensor *y)
{
    return node_is(n, "Cast") && x && y && x->dtype == CRUN_DTYPE_FLOAT16 && y->dtype == CRUN_DTYPE_FLOAT &&
           tensor_numel(x) >= 16;
}

static crun_status fold_node(Graph *g, Node *n, Diag *d)
{
    const Tensor **in = calloc((size_t)n->n_in + 1, sizeof *in);
    Tensor *vals = calloc((size_t)n->n_in + (size_t)n->n_out + 1, sizeof *vals);
    Tensor **out = calloc((size_t)n->n_out + 1, sizeof *out);
    crun_status st = CRUN_OK;
    if (!in || !vals || !out) {
        st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0) {
            vals[k] = value_tensor(&g->values[n->in[k]]);
            in[k] = &vals[k];
        }
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0)
            out[k] = &vals[n->n_in + k];
    bool folded;
    st = node_eval(n, in, n->n_in, out, n->n_out, &folded, d);
    if (st != CRUN_OK || !folded)
        goto done;
    if (widens_fp16_weight(n, in[0], out[0])) {
        Graph *root = g;
        while (root->parent)
            root = root->parent;
        root->fp16_weights = true;
    }
    for (int k = 0; k < n->n_out; k++) {
        if (!out[k])
            continue;
        Value *v = &g->values[n->out[k]];
        v->flags |= VALUE_IS_CONST;
        v->dtype = out[k]->dtype;
        v->rank = out[k]->rank;
        for (int i = 0; i < v->rank; i++)
            v->dims[i] = out[k]->dims[i];
        v->data = out[k]->data;
        v->producer = -1;
    }
    n->dead = true;
done:
    free(in);
    free(vals);
    free(out);
    return st;
}

static crun_status fold_all(Graph *g, Diag *d, bool keep_dq)
{
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        if (!foldable(g, n) || (keep_dq && node_is(n, "DequantizeLinear")))
            continue;
        crun_status st = fold_node(g, n, d);
        if (st != CRUN_OK)
            return st;
        changed |= n->dead;
    }
    if (changed)
        graph_compact(g);
    return CRUN_OK;
}

crun_status pass_fold_constants(Graph *g, Diag *d) { return fold_all(g, d, false); }
crun_status pass_fold_constants_keep_dq(Graph *g, Diag *d) { return fold_all(g, d, true); }
