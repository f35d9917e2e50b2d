/* dead.c - removes nodes none of whose outputs is used. Walking backwards and taking a
 * use away from each input of a removed node clears whole dead chains in one sweep. */
#include <stdlib.h>

#include "ops/registry.h"
#include "runtime/passes/passes.h"

crun_status pass_remove_dead(Graph *g, Diag *d)
{
    Uses u;
    int *cnt = malloc(((size_t)g->n_values + 1) * sizeof *cnt);
    if (!cnt || uses_build(g, &u) != CRUN_OK) {
        free(cnt);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int v = 0; v < g->n_values; v++)
        cnt[v] = uses_count(&u, v);
    bool changed = false;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        Node *n = &g->nodes[i];
        bool used = false;
        for (int k = 0; k < n->n_out && !used; k++) {
            int v = n->out[k];
            used = v >= 0 && (cnt[v] > 0 || value_escapes(g, v));
        }
        if (used)
            continue;
        n->dead = changed = true;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                cnt[n->in[k]]--;
    }
    uses_free(&u);
    free(cnt);
    if (changed)
        graph_compact(g);
    return CRUN_OK;
}
