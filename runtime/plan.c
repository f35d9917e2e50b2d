/* plan.c - from graph and input shapes to steps, kernels and arena offsets. */
#include "runtime/plan.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/arena.h"
#include "runtime/eval.h"
#include "platforms/xnnpack/region.h"

typedef struct Builder {
    const Graph *g;
    Plan *p;
    Diag *d;
    const Tensor **in;  /* scratch for one node's inputs */
    Tensor **out;       /* and outputs */
    int cap;
} Builder;

static bool has_subgraph(const Node *n)
{
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == ATTR_GRAPH || n->attrs[a].type == ATTR_GRAPHS)
            return true;
    return false;
}

static crun_status init_values(Builder *b, const PlanInput *inputs)
{
    const Graph *g = b->g;
    Plan *p = b->p;
    for (int v = 0; v < g->n_values; v++) {
        const Value *val = &g->values[v];
        PlanValue *pv = &p->vals[v];
        pv->root = v;
        pv->first = pv->last = -1;
        if (val->flags & VALUE_IS_CONST) {
            pv->store = STORE_CONST;
            pv->t.dtype = val->dtype;
            pv->t.rank = val->rank;
            memcpy(pv->t.dims, val->dims, sizeof pv->t.dims);
            pv->t.data = val->data;
        }
    }
    /* A subgraph's captured values are among its inputs (the loader made them so). */
    for (int i = 0; i < g->n_inputs; i++) {
        PlanValue *pv = &p->vals[g->inputs[i].value];
        pv->t.dtype = inputs[i].dtype;
        pv->t.rank = inputs[i].rank;
        memcpy(pv->t.dims, inputs[i].dims, sizeof pv->t.dims);
        pv->t.kind = inputs[i].kind;
        pv->t.none = inputs[i].none;
        pv->store = value_is_dynamic(&pv->t) ? STORE_DYNAMIC : STORE_ARENA;
        pv->first = 0;
    }
    return CRUN_OK;
}

static bool grow_scratch(Builder *b, int n)
{
    if (n <= b->cap)
        return true;
    const Tensor **in = realloc(b->in, (size_t)n * sizeof *in);
    if (in)
        b->in = in;
    Tensor **out = realloc(b->out, (size_t)n * sizeof *out);
    if (out)
        b->out = out;
    if (!in || !out)
        return false;
    b->cap = n;
    return true;
}

/* Points b->in/out at the plan's tensors of node n; returns false if an input is dynamic. */
static bool gather(Builder *b, const Node *n, bool *all_const, bool *shapes_known)
{
    bool dynamic = false;
    *all_const = *shapes_known = true;
    for (int k = 0; k < n->n_in; k++) {
        int v = n->in[k];
        b->in[k] = v < 0 ? NULL : &b->p->vals[v].t;
        if (v < 0)
            continue;
        Store s = b->p->vals[v].store;
        if (s != STORE_CONST)
            *all_const = false;
        if (s == STORE_DYNAMIC)
            dynamic = true;
    }
    *shapes_known = !dynamic;
    for (int k = 0; k < n->n_out; k++)
        b->out[k] = n->out[k] < 0 ? NULL : &b->p->vals[n->out[k]].t;
    return !dynamic;
}

static crun_status add_step(Builder *b, int node_index, bool dynamic);

/* A compiled model's packed-away weights (VALUE_PACKED) hold no data: only a kernel that
 * reads its pack instead (mask bit set by its prepare) may take them. */
static crun_status check_packed_inputs(const Builder *b, const Node *n, uint32_t mask)
{
    for (int k = 0; k < n->n_in; k++)
        if (b->in[k] && data_packed_away(b->in[k]->data) && (k >= 32 || !(mask & (1u << k))))
            return node_fail(n, b->d, CRUN_ERR_UNSUPPORTED,
                             "input %d was kept only packed for kernel %s by crun compile, and this plan needs "
                             "it otherwise: compile the model again for these shapes and this CPU",
                             k, n->kernel ? n->kernel->name : "?");
    return CRUN_OK;
}

static crun_status fold_node(Builder *b, int node_index)
{
    const Node *n = &b->g->nodes[node_index];
    bool done;
    crun_status st = check_packed_inputs(b, n, 0);
    if (st != CRUN_OK)
        return st;
    st = node_eval(n, b->in, n->n_in, b->out, n->n_out, &done, b->d);
    if (st != CRUN_OK)
        return st;
    if (!done) /* too heavy for plan time: an ordinary step (shapes are inferred) */
        return add_step(b, node_index, false);
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0) {
            PlanValue *pv = &b->p->vals[n->out[k]];
            pv->store = STORE_CONST;
            pv->owned = true;
        }
    return CRUN_OK;
}

static crun_status add_step(Builder *b, int node_index, bool dynamic)
{
    const Node *n = &b->g->nodes[node_index];
    PlanStep *s = &b->p->steps[b->p->n_steps++];
    memset(s, 0, sizeof *s);
    s->node = node_index;
    s->dynamic = dynamic;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0)
            b->p->vals[n->out[k]].store = dynamic ? STORE_DYNAMIC : STORE_ARENA;
    if (dynamic) {
        b->p->has_dynamic = true;
        return check_packed_inputs(b, n, 0);
    }
    PrepCtx pc = {.node = n, .params = n->params, .n_in = n->n_in, .n_out = n->n_out, .in = b->in,
                  .out = (const Tensor *const *)b->out, .n_threads = b->p->n_threads, .d = b->d,
                  .packs = graph_root(b->g)->packs, .fp16_weights = graph_root(b->g)->fp16_weights};
    s->kv = op_choose_kernel(n->op, &pc);
    if (!s->kv)
        return node_fail(n, b->d, CRUN_ERR_UNSUPPORTED, "no kernel for input type %s",
                         n->n_in && b->in[0] ? dtype_name(b->in[0]->dtype) : "?");
    pc.kdata = s->kv->data;
    if (s->kv->prepare) {
        crun_status st = s->kv->prepare(&pc);
        if (st != CRUN_OK)
            return st;
    }
    s->state = pc.state;
    s->state_bytes = pc.state_bytes;
    s->ws_bytes = pc.ws_bytes;
    s->packed_inputs = pc.packed_inputs;
    crun_status st = check_packed_inputs(b, n, pc.packed_inputs);
    if (st != CRUN_OK)
        return st;
    s->flops = n->op->flops ? n->op->flops(n, b->in, (const Tensor *const *)b->out) : 0;
    return CRUN_OK;
}

static crun_status plan_node(Builder *b, int node_index)
{
    const Node *n = &b->g->nodes[node_index];
    if (!grow_scratch(b, CRUN_MAX(n->n_in, n->n_out) + 1))
        return diag_fail(b->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    bool all_const, shapes_known;
    if (!gather(b, n, &all_const, &shapes_known))
        return add_step(b, node_index, true);
    bool fold = (all_const || (n->op->flags & OPF_SHAPE_ONLY)) && !(n->op->flags & OPF_NO_FOLD) && !has_subgraph(n);
    if (fold)
        return fold_node(b, node_index);
    bool needs_data = false;
    crun_status st = node_infer(n, b->in, n->n_in, b->out, n->n_out, &needs_data, b->d);
    if (st != CRUN_OK)
        return st;
    for (int k = 0; k < n->n_out && !needs_data; k++)
        needs_data = b->out[k] && value_is_dynamic(b->out[k]);
    return add_step(b, node_index, needs_data);
}

/* ---- liveness, aliasing and arena ---- */

StepIo step_io(const Plan *p, const PlanStep *s)
{
    if (s->region_io)
        return (StepIo){s->region_io, s->region_io + s->n_region_in, s->n_region_in, s->n_region_out};
    const Node *n = &p->g->nodes[s->node];
    return (StepIo){n->in, n->out, n->n_in, n->n_out};
}

static void compute_lifetimes(Plan *p)
{
    const Graph *g = p->g;
    for (int s = 0; s < p->n_steps; s++) {
        StepIo io = step_io(p, &p->steps[s]);
        for (int k = 0; k < io.n_in; k++)
            if (io.in[k] >= 0 && p->vals[io.in[k]].store != STORE_CONST)
                p->vals[io.in[k]].last = s;
        for (int k = 0; k < io.n_out; k++)
            if (io.out[k] >= 0) {
                p->vals[io.out[k]].first = s;
                p->vals[io.out[k]].last = CRUN_MAX(p->vals[io.out[k]].last, s);
            }
    }
    for (int i = 0; i < g->n_inputs; i++) {
        PlanValue *pv = &p->vals[g->inputs[i].value];
        pv->last = CRUN_MAX(pv->last, 0);
    }
    for (int i = 0; i < g->n_outputs; i++)
        p->vals[g->outputs[i].value].last = p->n_steps;
    for (int v = 0; v < g->n_values; v++) {
        PlanValue *pv = &p->vals[v];
        if (pv->store == STORE_ARENA || pv->store == STORE_DYNAMIC)
            pv->bytes = tensor_bytes(&pv->t);
    }
}

/* Lets a view's output, or an in-place op's output, use its input's storage. */
static void assign_aliases(Plan *p)
{
    const Graph *g = p->g;
    for (int s = 0; s < p->n_steps; s++) {
        const PlanStep *st = &p->steps[s];
        const Node *n = &g->nodes[st->node];
        if (st->dynamic || st->region_io || n->n_out < 1 || n->out[0] < 0)
            continue;
        PlanValue *out = &p->vals[n->out[0]];
        if (out->store != STORE_ARENA)
            continue;
        for (int k = 0; k < n->n_in; k++) {
            int v = n->in[k];
            if (v < 0 || p->vals[v].store != STORE_ARENA || p->vals[v].bytes != out->bytes)
                continue;
            PlanValue *root = &p->vals[p->vals[v].root];
            bool view = (n->op->flags & OPF_VIEW) && k == 0;
            bool inplace = (n->op->flags & OPF_INPLACE) && root->last == s && p->vals[v].t.dtype == out->t.dtype;
            if (!view && !inplace)
                continue;
            out->root = p->vals[v].root;
            root->last = CRUN_MAX(root->last, out->last);
            break;
        }
    }
}

/* Whether the inputs of a joining op (OPF_JOINS_INPUTS) are consecutive slices of out:
 * they differ from out along at most one axis, and only unit dims come before it. */
static bool inputs_are_slices(const Plan *p, const Node *n, const Tensor *out)
{
    int axis = -1;
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0)
            return false;
        const Tensor *t = &p->vals[n->in[k]].t;
        if (t->rank != out->rank || t->dtype != out->dtype)
            return false;
        for (int a = 0; a < t->rank; a++)
            if (t->dims[a] != out->dims[a]) {
                if (axis >= 0 && axis != a)
                    return false;
                axis = a;
            }
    }
    return axis < 0 || shape_numel(out->dims, axis) == 1;
}

/* For ops whose inputs are consecutive slices of their output (Concat along an axis with
 * only unit dims before it), an input that only that op reads is written by its producer
 * straight into its slice, and the op copies nothing for it. */
static void concat_in_place(Plan *p)
{
    const Graph *g = p->g;
    int *readers = calloc((size_t)g->n_values + 1, sizeof *readers);
    if (!readers)
        return; /* an optimisation only */
    for (int s = 0; s < p->n_steps; s++) {
        StepIo io = step_io(p, &p->steps[s]);
        for (int k = 0; k < io.n_in; k++)
            if (io.in[k] >= 0)
                readers[io.in[k]]++;
    }
    for (int i = 0; i < g->n_inputs; i++)
        readers[g->inputs[i].value] += 2; /* bound by the caller: never moved */
    for (int i = 0; i < g->n_outputs; i++)
        readers[g->outputs[i].value] += 2;
    for (int s = 0; s < p->n_steps; s++) {
        const PlanStep *st = &p->steps[s];
        const Node *n = &g->nodes[st->node];
        if (st->dynamic || st->region_io || !(n->op->flags & OPF_JOINS_INPUTS) || n->out[0] < 0)
            continue;
        PlanValue *out = &p->vals[n->out[0]];
        if (out->store != STORE_ARENA || !inputs_are_slices(p, n, &out->t))
            continue;
        PlanValue *root = &p->vals[out->root];
        size_t at = out->sub_offset;
        for (int k = 0; k < n->n_in; k++) {
            int v = n->in[k];
            PlanValue *pv = &p->vals[v];
            bool movable = pv->store == STORE_ARENA && pv->root == v && readers[v] == 1 && pv->first >= 0;
            if (movable) {
                pv->root = out->root;
                pv->sub_offset = at;
                root->first = CRUN_MIN(root->first, pv->first);
            }
            at += pv->bytes;
        }
    }
    free(readers);
}

static crun_status place_buffers(Plan *p, Diag *d)
{
    const Graph *g = p->g;
    int n = 0;
    ArenaBuf *bufs = calloc((size_t)g->n_values + (size_t)p->n_steps + 1, sizeof *bufs);
    int *owner = calloc((size_t)g->n_values + (size_t)p->n_steps + 1, sizeof *owner);
    if (!bufs || !owner) {
        free(bufs);
        free(owner);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int v = 0; v < g->n_values; v++) {
        const PlanValue *pv = &p->vals[v];
        if (pv->store != STORE_ARENA)
            continue;
        p->naive_bytes += pv->bytes;
        if (pv->root != v || pv->bytes == 0)
            continue;
        bufs[n] = (ArenaBuf){pv->bytes, CRUN_MAX(pv->first, 0), CRUN_MAX(pv->last, 0), 0};
        owner[n++] = v;
    }
    for (int s = 0; s < p->n_steps; s++)
        if (p->steps[s].ws_bytes) {
            p->naive_bytes += p->steps[s].ws_bytes;
            bufs[n] = (ArenaBuf){p->steps[s].ws_bytes, s, s, 0};
            owner[n++] = -1 - s;
        }
    size_t total = arena_assign(bufs, n);
    if (total == SIZE_MAX) {
        free(bufs);
        free(owner);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    p->arena_bytes = total;
    p->lower_bound = arena_lower_bound(bufs, n);
    for (int i = 0; i < n; i++) {
        if (owner[i] >= 0)
            p->vals[owner[i]].offset = bufs[i].offset;
        else
            p->steps[-1 - owner[i]].ws_offset = bufs[i].offset;
    }
    for (int v = 0; v < g->n_values; v++)
        if (p->vals[v].store == STORE_ARENA)
            p->vals[v].offset = p->vals[p->vals[v].root].offset + p->vals[v].sub_offset;
    free(bufs);
    free(owner);
    return CRUN_OK;
}

uint64_t plan_inputs_key(const PlanInput *inputs, int n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the fields */
    for (int i = 0; i < n; i++) {
        int64_t f[3 + CRUN_MAX_RANK] = {inputs[i].dtype, inputs[i].rank, inputs[i].kind * 2 + inputs[i].none};
        for (int k = 0; k < inputs[i].rank && k < CRUN_MAX_RANK; k++)
            f[3 + k] = inputs[i].dims[k];
        const uint8_t *b = (const uint8_t *)f;
        for (size_t j = 0; j < sizeof f; j++)
            h = (h ^ b[j]) * 1099511628211ull;
    }
    return h;
}

/* A compiled model's plan, at the thread count it was compiled for, must lay the arena out
 * as the file says: the plan is re-derived from the pinned kernels, and this proves it is
 * the compiled one (never a different layout than the arena bytes printed at compile). */
static crun_status check_compiled_layout(const Plan *p, Diag *d)
{
    const Graph *g = p->g;
    if (g->parent || !g->compiled_offsets || p->n_threads != g->compiled_threads ||
        plan_inputs_key(p->inputs, g->n_inputs) != g->compiled_inputs)
        return CRUN_OK; /* planned for other shapes or threads: a layout of its own */
    for (int v = 0; v < g->n_values; v++) {
        size_t at = p->vals[v].store == STORE_ARENA ? p->vals[v].offset : SIZE_MAX;
        if (at != g->compiled_offsets[v])
            return diag_fail(d, CRUN_ERR_INVALID_MODEL,
                             "the plan differs from the compiled one (value '%s' at arena offset %zu, compiled "
                             "at %zu): compile the model again with this crun",
                             g->values[v].name, at, g->compiled_offsets[v]);
    }
    return CRUN_OK;
}

static void count_weights(Plan *p)
{
    for (int v = 0; v < p->g->n_values; v++)
        if (p->vals[v].store == STORE_CONST)
            p->weight_bytes += tensor_bytes(&p->vals[v].t);
    for (int s = 0; s < p->n_steps; s++)
        p->weight_bytes += p->steps[s].state_bytes;
}

crun_status plan_build(const Graph *g, const PlanInput *inputs, int n_threads, Backend backend, const XnnChoice *xc,
                       Plan **out, Diag *d)
{
    *out = NULL;
    Plan *p = calloc(1, sizeof *p);
    if (!p)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    p->g = g;
    p->n_threads = n_threads;
    p->vals = calloc((size_t)g->n_values + 1, sizeof *p->vals);
    p->steps = calloc((size_t)g->n_nodes + 1, sizeof *p->steps);
    p->inputs = calloc((size_t)g->n_inputs + 1, sizeof *p->inputs);
    if (!p->vals || !p->steps || !p->inputs) {
        plan_free(p);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(p->inputs, inputs, (size_t)g->n_inputs * sizeof *inputs);
    Builder b = {.g = g, .p = p, .d = d};
    crun_status st = init_values(&b, inputs);
    for (int i = 0; st == CRUN_OK && i < g->n_nodes; i++)
        st = plan_node(&b, i);
    free(b.in);
    free(b.out);
    p->backend = backend == BACKEND_XNNPACK ? BACKEND_XNNPACK : BACKEND_NATIVE;
    if (st == CRUN_OK && p->backend == BACKEND_XNNPACK)
        st = xnn_form_regions(p, xc, d);
    if (st == CRUN_OK) {
        compute_lifetimes(p);
        assign_aliases(p);
        concat_in_place(p);
        st = place_buffers(p, d);
    }
    if (st == CRUN_OK)
        st = check_compiled_layout(p, d);
    if (st != CRUN_OK) {
        plan_free(p);
        return st;
    }
    count_weights(p);
    *out = p;
    return CRUN_OK;
}

void plan_free(Plan *p)
{
    if (!p)
        return;
    if (p->vals)
        for (int v = 0; v < p->g->n_values; v++)
            if (p->vals[v].owned)
                tensor_data_free(p->vals[v].t.dtype, p->vals[v].t.data, tensor_numel(&p->vals[v].t));
    if (p->steps)
        for (int s = 0; s < p->n_steps; s++) {
            if (p->steps[s].release)
                p->steps[s].release(p->steps[s].state);
            else
                mem_free(p->steps[s].state);
            free(p->steps[s].region_io);
        }
    free(p->vals);
    free(p->steps);
    free(p->inputs);
    free(p);
}
