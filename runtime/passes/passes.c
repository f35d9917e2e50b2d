/* passes.c - the pass list and the helpers the passes share. */
#include "runtime/passes/passes.h"

#include <stdio.h>
#include <string.h>

typedef crun_status (*PassFn)(Graph *g, Diag *d);

/* Order matters: identities go first so patterns match through them; folding makes
 * BatchNorm parameters, bias shapes and LayerNorm's epsilon constant, but QDQ patterns
 * are matched before the weights' DequantizeLinear nodes fold to float (and the ones the
 * integer ops no longer read are removed before they would); BatchNorm folding
 * leaves Conv + bias for the bias and activation fusions; dead-node removal sweeps what
 * they orphaned. */
static const PassFn pass_list[] = {
    pass_remove_identity, pass_fold_constants_keep_dq, pass_fuse_qdq, pass_remove_dead, pass_fold_constants,
    pass_fold_batchnorm,  pass_fuse_layernorm,
    pass_fuse_bias,       pass_fuse_activation, pass_remove_dead,
};

static crun_status run_on_subgraphs(Graph *g, Diag *d)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attrs; a++) {
            Attr *at = &g->nodes[i].attrs[a];
            int n = at->type == ATTR_GRAPH ? 1 : at->type == ATTR_GRAPHS ? at->n : 0;
            for (int k = 0; k < n; k++) {
                crun_status st = passes_run(at->graphs[k], d);
                if (st != CRUN_OK)
                    return st;
            }
        }
    return CRUN_OK;
}

crun_status passes_run(Graph *g, Diag *d)
{
    for (size_t i = 0; i < CRUN_ARRAY_LEN(pass_list); i++) {
        crun_status st = pass_list[i](g, d);
        if (st != CRUN_OK)
            return st;
    }
    return run_on_subgraphs(g, d);
}

int graph_add_const(Graph *g, const char *base_name, Tensor *t)
{
    char name[256];
    /* Names only serve messages once the model is loaded, so a clash would be harmless. */
    snprintf(name, sizeof name, "%s#%d", base_name, g->n_values);
    int v = graph_add_value(g, name);
    if (v < 0)
        return -1;
    Value *val = &g->values[v];
    val->flags |= VALUE_IS_CONST;
    val->dtype = t->dtype;
    val->rank = t->rank;
    for (int i = 0; i < t->rank; i++)
        val->dims[i] = t->dims[i];
    val->data = t->data;
    t->data = NULL;
    return v;
}

int single_consumer(const Graph *g, const Uses *u, int v)
{
    if (uses_count(u, v) != 1 || value_escapes(g, v))
        return -1;
    return u->idx[u->start[v]];
}

bool node_is(const Node *n, const char *op) { return n && !n->dead && !n->domain[0] && !strcmp(n->op_type, op); }

int other_operand(const Node *n, const char *op, int v)
{
    if (!node_is(n, op) || n->n_in != 2 || n->n_out != 1)
        return -1;
    return n->in[0] == v ? n->in[1] : n->in[1] == v ? n->in[0] : -1;
}

bool scalar_const(const Graph *g, int v, float *out)
{
    const Value *val = v < 0 ? NULL : &g->values[v];
    if (!val || !value_is_const(g, v) || val->dtype != CRUN_DTYPE_FLOAT || shape_numel(val->dims, val->rank) != 1)
        return false;
    *out = ((const float *)val->data)[0];
    return true;
}

void note_fused(Node *n, const char *what)
{
    size_t len = strlen(n->fused);
    snprintf(n->fused + len, sizeof n->fused - len, "%s%s", len ? "+" : "", what);
}
