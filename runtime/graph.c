/* graph.c - building, ordering and rewriting the IR. */
#include "runtime/graph.h"

#include "runtime/packcache.h"

#include <stdlib.h>
#include <string.h>

Graph *graph_new(Graph *parent)
{
    Graph *g = calloc(1, sizeof *g);
    if (g)
        g->parent = parent;
    return g;
}

const Graph *graph_root(const Graph *g)
{
    while (g->parent)
        g = g->parent;
    return g;
}

void tensor_data_free(crun_dtype dtype, void *data, int64_t numel)
{
    if (!data)
        return;
    if (dtype == CRUN_DTYPE_STRING) {
        char **s = data;
        for (int64_t i = 0; i < numel; i++)
            free(s[i]);
    }
    mem_free(data);
}

void attr_clear(Attr *a)
{
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    for (int i = 0; a->strings && i < a->n; i++)
        free(a->strings[i]);
    free(a->strings);
    if (a->tensors) {
        int n = a->type == ATTR_TENSOR ? 1 : a->n;
        for (int i = 0; i < n; i++)
            tensor_data_free(a->tensors[i].t.dtype, a->tensors[i].t.data, tensor_numel(&a->tensors[i].t));
        free(a->tensors);
    }
    if (a->graphs) {
        int n = a->type == ATTR_GRAPH ? 1 : a->n;
        for (int i = 0; i < n; i++)
            graph_free(a->graphs[i]);
        free(a->graphs);
    }
    memset(a, 0, sizeof *a);
}

static void node_clear(Node *n)
{
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->n_attrs; i++)
        attr_clear(&n->attrs[i]);
    free(n->attrs);
    free(n->params);
    memset(n, 0, sizeof *n);
}

void graph_free(Graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        node_clear(&g->nodes[i]);
    free(g->nodes);
    for (int i = 0; i < g->n_values; i++) {
        Value *v = &g->values[i];
        if ((v->flags & VALUE_IS_CONST) && !(v->flags & VALUE_BORROWED))
            tensor_data_free(v->dtype, v->data, shape_numel(v->dims, v->rank));
        free(v->name);
    }
    free(g->values);
    for (int i = 0; i < g->n_inputs; i++)
        free(g->inputs[i].name);
    for (int i = 0; i < g->n_outputs; i++)
        free(g->outputs[i].name);
    free(g->inputs);
    free(g->outputs);
    for (int i = 0; i < g->n_syms; i++)
        free(g->syms[i]);
    free(g->syms);
    for (int i = 0; i < g->n_opsets; i++)
        free(g->opsets[i].domain);
    free(g->opsets);
    strmap_free(&g->names);
    packcache_free(g->packs);
    free(g->compiled_offsets);
    free(g->name);
    free(g);
}

static bool grow_array(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return false;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
    *arr = p;
    *cap = ncap;
    return true;
}

int graph_add_value(Graph *g, const char *name)
{
    if (!grow_array((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(Value)))
        return -1;
    Value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = str_dup(name);
    if (!v->name)
        return -1;
    v->rank = -1;
    v->producer = -1;
    v->outer = -1;
    for (int i = 0; i < CRUN_MAX_RANK; i++) {
        v->dims[i] = -1;
        v->sym[i] = -1;
    }
    if (name[0] && !strmap_put(&g->names, v->name, g->n_values)) {
        free(v->name);
        return -1;
    }
    return g->n_values++;
}

int graph_find_value(const Graph *g, const char *name) { return strmap_get(&g->names, name); }

int graph_add_node(Graph *g)
{
    if (!grow_array((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(Node)))
        return -1;
    memset(&g->nodes[g->n_nodes], 0, sizeof(Node));
    return g->n_nodes++;
}

int graph_intern_sym(Graph *g, const char *name)
{
    Graph *r = (Graph *)graph_root(g);
    for (int i = 0; i < r->n_syms; i++)
        if (strcmp(r->syms[i], name) == 0)
            return i;
    char **p = realloc(r->syms, (size_t)(r->n_syms + 1) * sizeof *p);
    if (!p)
        return -1;
    r->syms = p;
    if (!(p[r->n_syms] = str_dup(name)))
        return -1;
    return r->n_syms++;
}

int64_t graph_opset(const Graph *g, const char *domain)
{
    const Graph *r = graph_root(g);
    if (strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (int i = 0; i < r->n_opsets; i++)
        if (strcmp(r->opsets[i].domain, domain) == 0)
            return r->opsets[i].version;
    return -1;
}

const Attr *node_attr(const Node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

/* ---- topological order ---- */

static bool value_is_available(const Value *v)
{
    return (v->flags & (VALUE_IS_INPUT | VALUE_IS_CONST | VALUE_IS_OUTER)) != 0;
}

crun_status graph_toposort(Graph *g, Diag *d)
{
    int nv = g->n_values, nn = g->n_nodes;
    for (int v = 0; v < nv; v++)
        g->values[v].producer = -1;
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++) {
            int v = g->nodes[i].out[k];
            if (v < 0)
                continue;
            if (g->values[v].producer >= 0 || value_is_available(&g->values[v]))
                return diag_fail(d, CRUN_ERR_INVALID_MODEL, "value '%s' is defined twice (again by node '%s')",
                                 g->values[v].name, g->nodes[i].name);
            g->values[v].producer = i;
        }
    /* Kahn's algorithm over node dependencies, taking the lowest ready index first so
     * already-sorted models keep their order. */
    int *pending = calloc((size_t)nn + 1, sizeof *pending);
    int *order = malloc(((size_t)nn + 1) * sizeof *order);
    Uses u = {0};
    if (!pending || !order || uses_build(g, &u) != CRUN_OK) {
        free(pending);
        free(order);
        uses_free(&u);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory while ordering nodes");
    }
    crun_status st = CRUN_OK;
    for (int i = 0; i < nn && st == CRUN_OK; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v < 0)
                continue;
            if (g->values[v].producer >= 0)
                pending[i]++;
            else if (!value_is_available(&g->values[v]))
                st = diag_fail(d, CRUN_ERR_INVALID_MODEL, "node '%s' (%s) uses value '%s', which nothing defines",
                               g->nodes[i].name, g->nodes[i].op_type, g->values[v].name);
        }
    int done = 0;
    /* lowest is the smallest index not yet taken, so the scan from it sees every
     * candidate; on an already sorted graph each pick is found at once. */
    char *taken = calloc((size_t)nn + 1, 1);
    int lowest = 0;
    while (st == CRUN_OK && taken && done < nn) {
        int pick = -1;
        for (int i = lowest; i < nn; i++)
            if (!taken[i] && pending[i] == 0) {
                pick = i;
                break;
            }
        if (pick < 0) {
            for (int i = 0; i < nn; i++)
                if (!taken[i]) {
                    st = diag_fail(d, CRUN_ERR_INVALID_MODEL, "the graph has a cycle through node '%s' (%s)",
                                   g->nodes[i].name, g->nodes[i].op_type);
                    break;
                }
            break;
        }
        taken[pick] = 1;
        order[done++] = pick;
        for (int k = 0; k < g->nodes[pick].n_out; k++) {
            int v = g->nodes[pick].out[k];
            if (v < 0)
                continue;
            for (int j = u.start[v]; j < u.start[v + 1]; j++)
                pending[u.idx[j]]--;
        }
        while (lowest < nn && taken[lowest])
            lowest++;
    }
    if (!taken && st == CRUN_OK)
        st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory while ordering nodes");
    if (st == CRUN_OK) {
        Node *sorted = malloc((size_t)(nn ? nn : 1) * sizeof *sorted);
        if (!sorted) {
            st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory while ordering nodes");
        } else {
            for (int i = 0; i < nn; i++)
                sorted[i] = g->nodes[order[i]];
            if (nn)
                memcpy(g->nodes, sorted, (size_t)nn * sizeof *sorted);
            free(sorted);
            for (int i = 0; i < nn; i++)
                for (int k = 0; k < g->nodes[i].n_out; k++)
                    if (g->nodes[i].out[k] >= 0)
                        g->values[g->nodes[i].out[k]].producer = i;
        }
    }
    free(taken);
    free(pending);
    free(order);
    uses_free(&u);
    return st;
}

/* A node consumes a value once per input slot it appears in; that is what liveness and
 * the ordering above need. */
crun_status uses_build(const Graph *g, Uses *u)
{
    int nv = g->n_values;
    u->start = calloc((size_t)nv + 2, sizeof *u->start);
    int total = 0;
    for (int i = 0; i < g->n_nodes; i++)
        total += g->nodes[i].n_in;
    u->idx = malloc(((size_t)total + 1) * sizeof *u->idx);
    if (!u->start || !u->idx) {
        uses_free(u);
        return CRUN_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0)
                u->start[g->nodes[i].in[k] + 1]++;
    for (int v = 0; v < nv; v++)
        u->start[v + 1] += u->start[v];
    int *fill = calloc((size_t)nv + 1, sizeof *fill);
    if (!fill) {
        uses_free(u);
        return CRUN_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0)
                u->idx[u->start[v] + fill[v]++] = i;
        }
    free(fill);
    return CRUN_OK;
}

void uses_free(Uses *u)
{
    free(u->start);
    free(u->idx);
    u->start = u->idx = NULL;
}

static bool subgraph_captures(const Graph *sub, int v)
{
    for (int i = 0; i < sub->n_values; i++)
        if ((sub->values[i].flags & VALUE_IS_OUTER) && sub->values[i].outer == v)
            return true;
    return false;
}

bool value_escapes(const Graph *g, int v)
{
    if (g->values[v].flags & VALUE_IS_OUTPUT)
        return true;
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attrs; a++) {
            const Attr *at = &g->nodes[i].attrs[a];
            int n = at->type == ATTR_GRAPH ? 1 : at->type == ATTR_GRAPHS ? at->n : 0;
            for (int k = 0; k < n; k++)
                if (subgraph_captures(at->graphs[k], v))
                    return true;
        }
    return false;
}

static void replace_outer_refs(Graph *sub, int old_id, int new_id)
{
    for (int i = 0; i < sub->n_values; i++)
        if ((sub->values[i].flags & VALUE_IS_OUTER) && sub->values[i].outer == old_id)
            sub->values[i].outer = new_id;
}

void graph_replace_uses(Graph *g, int old_id, int new_id)
{
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == old_id)
                n->in[k] = new_id;
        for (int a = 0; a < n->n_attrs; a++) {
            Attr *at = &n->attrs[a];
            int cnt = at->type == ATTR_GRAPH ? 1 : at->type == ATTR_GRAPHS ? at->n : 0;
            for (int s = 0; s < cnt; s++)
                replace_outer_refs(at->graphs[s], old_id, new_id);
        }
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i].value == old_id) {
            g->outputs[i].value = new_id;
            g->values[new_id].flags |= VALUE_IS_OUTPUT;
            g->values[old_id].flags &= ~(uint32_t)VALUE_IS_OUTPUT;
        }
}

bool node_set_input(Node *n, int k, int v)
{
    if (k >= n->n_in) {
        int *p = realloc(n->in, (size_t)(k + 1) * sizeof *p);
        if (!p)
            return false;
        for (int i = n->n_in; i < k; i++)
            p[i] = -1;
        n->in = p;
        n->n_in = k + 1;
    }
    n->in[k] = v;
    return true;
}

void graph_compact(Graph *g)
{
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].dead) {
            for (int k = 0; k < g->nodes[i].n_out; k++)
                if (g->nodes[i].out[k] >= 0 && g->values[g->nodes[i].out[k]].producer == i)
                    g->values[g->nodes[i].out[k]].producer = -1;
            node_clear(&g->nodes[i]);
            continue;
        }
        g->nodes[w++] = g->nodes[i];
    }
    g->n_nodes = w;
    for (int i = 0; i < w; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++)
            if (g->nodes[i].out[k] >= 0)
                g->values[g->nodes[i].out[k]].producer = i;
}
