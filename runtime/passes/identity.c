/* identity.c - removes Identity and inference-mode Dropout: their consumers read the
 * input directly. */
#include <string.h>

#include "runtime/passes/passes.h"

static bool is_passthrough(const Graph *g, const Node *n)
{
    if (strcmp(n->domain, "") != 0 || n->n_in < 1 || n->in[0] < 0 || n->n_out < 1 || n->out[0] < 0)
        return false;
    if (strcmp(n->op_type, "Identity") == 0)
        return n->n_in == 1;
    if (strcmp(n->op_type, "Dropout") != 0)
        return false;
    /* The mask output must be unused, and training_mode (opset 12+) absent or false. */
    for (int k = 1; k < n->n_out; k++)
        if (n->out[k] >= 0)
            return false;
    if (n->n_in > 2 && n->in[2] >= 0) {
        const Value *tm = &g->values[n->in[2]];
        if (!(tm->flags & VALUE_IS_CONST) || tm->dtype != CRUN_DTYPE_BOOL || ((const uint8_t *)tm->data)[0])
            return false;
    }
    return true;
}

crun_status pass_remove_identity(Graph *g, Diag *d)
{
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        if (n->dead || !is_passthrough(g, n))
            continue;
        /* A graph input passed straight to a graph output keeps its node: outputs must
         * be distinct tensors the caller can read after the run. */
        int src = n->in[0], dst = n->out[0];
        if ((g->values[src].flags & (VALUE_IS_INPUT | VALUE_IS_OUTER)) && (g->values[dst].flags & VALUE_IS_OUTPUT))
            continue;
        graph_replace_uses(g, dst, src);
        n->dead = true;
        changed = true;
    }
    if (changed)
        graph_compact(g);
    return CRUN_OK;
}
