/* control.c - control flow: If, Loop, Scan (opsets 8 and 9+), SequenceMap.
 *
 * Each subgraph runs in an executor of its own (made on first use and kept in the step's
 * slot, so a loop whose shapes do not change plans its body once). A subgraph's inputs are
 * its declared ones followed by the values it captures from outside, which the loader
 * made implicit inputs of the node (GraphIO.parent_input says which). Output shapes are
 * known only after the subgraph ran, so these ops shape their outputs themselves
 * (OPF_KERNEL_SHAPES). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/executor.h"
#include "runtime/sequence.h"
#include "runtime/threadpool.h"

#define MAX_SCAN 64

typedef struct ControlParams {
    const Graph *graphs[2]; /* If: then, else; the others: body */
    int64_t num_scan_inputs;
    int n_in_axes, n_in_dirs, n_out_axes, n_out_dirs;
    int64_t in_axes[MAX_SCAN], in_dirs[MAX_SCAN], out_axes[MAX_SCAN], out_dirs[MAX_SCAN];
} ControlParams;

typedef struct ControlState {
    Executor *exec[2];
    char name[2][200];
} ControlState;

static void state_release(void *p)
{
    ControlState *s = p;
    if (!s)
        return;
    exec_free(s->exec[0]);
    exec_free(s->exec[1]);
    free(s);
}

static const Graph *graph_attr(const Node *n, const char *name)
{
    const Attr *a = node_attr(n, name);
    return a && a->type == ATTR_GRAPH ? a->graphs[0] : NULL;
}

static crun_status parse_control(Node *n, Diag *d)
{
    ControlParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    bool is_if = !strcmp(n->op_type, "If");
    p->graphs[0] = graph_attr(n, is_if ? "then_branch" : "body");
    p->graphs[1] = is_if ? graph_attr(n, "else_branch") : NULL;
    if (!p->graphs[0] || (is_if && !p->graphs[1]))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "a subgraph attribute is missing");
    /* Scan's first input is the optional sequence_lens before opset 9, a state after. */
    if (!strcmp(n->op_type, "Scan") && n->opset >= 9 && (n->n_in - n->n_implicit < 1 || n->in[0] < 0))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "required input 0 is missing");
    crun_status st = attr_get_int(n, "num_scan_inputs", 0, &p->num_scan_inputs, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "scan_input_axes", p->in_axes, MAX_SCAN, &p->n_in_axes, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, n->opset < 9 ? "directions" : "scan_input_directions", p->in_dirs, MAX_SCAN,
                           &p->n_in_dirs, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "scan_output_axes", p->out_axes, MAX_SCAN, &p->n_out_axes, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "scan_output_directions", p->out_dirs, MAX_SCAN, &p->n_out_dirs, d);
    return st;
}

/* Control-flow outputs are shaped while running: planned as dynamic steps. */
static crun_status dynamic_infer(InferCtx *c)
{
    c->needs_data = true;
    return CRUN_OK;
}

static crun_status fail_sub(const KernelCtx *k, crun_status st)
{
    return node_fail(k->node, k->d, st, "%s", crun_last_error());
}

/* The executor of subgraph i, made on first use. */
static crun_status sub_executor(KernelCtx *k, int i, Executor **out)
{
    const ControlParams *p = k->params;
    if (!k->slot->ptr) {
        ControlState *s = calloc(1, sizeof *s);
        if (!s)
            return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        k->slot->ptr = s;
        k->slot->release = state_release;
    }
    ControlState *s = k->slot->ptr;
    if (!s->exec[i]) {
        snprintf(s->name[i], sizeof s->name[i], "subgraph '%s' of node '%s'", p->graphs[i]->name, k->node->name);
        ExecOptions o = {.n_threads = pool_threads(k->pool), .pool = k->pool};
        crun_status st = exec_create(p->graphs[i], s->name[i], &o, &s->exec[i]);
        if (st != CRUN_OK)
            return fail_sub(k, st);
    }
    *out = s->exec[i];
    return CRUN_OK;
}

/* Binds the values subgraph g captures (its inputs from `first` on) from the node's inputs. */
static void bind_captures(KernelCtx *k, Executor *e, const Graph *g)
{
    for (int j = 0; j < g->n_inputs; j++)
        if (g->inputs[j].parent_input >= 0)
            exec_bind(e, j, k->in[g->inputs[j].parent_input]);
}

/* Gives output i of the node the shape of v and copies v into it. */
static crun_status emit(KernelCtx *k, int i, const Tensor *v)
{
    Tensor *o = k->out[i];
    if (!o)
        return CRUN_OK;
    *o = *v;
    o->data = NULL;
    o->seq = NULL;
    if (exec_store_output(k->exec, k->node->out[i], o) != CRUN_OK || value_copy(o, v) != CRUN_OK)
        return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for output %d", i);
    return CRUN_OK;
}

/* ================= If ================= */

static crun_status if_run(KernelCtx *k)
{
    const ControlParams *p = k->params;
    const Tensor *cond = k->in[0];
    if (tensor_numel(cond) != 1)
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "the condition must hold one value");
    int branch = tensor_get_int(cond, 0) ? 0 : 1;
    Executor *e;
    crun_status st = sub_executor(k, branch, &e);
    if (st != CRUN_OK)
        return st;
    const Graph *g = p->graphs[branch];
    bind_captures(k, e, g);
    if ((st = exec_run(e)) != CRUN_OK)
        return fail_sub(k, st);
    if (g->n_outputs != k->n_out)
        return node_fail(k->node, k->d, CRUN_ERR_INVALID_MODEL, "the branch has %d outputs, the node %d",
                         g->n_outputs, k->n_out);
    for (int i = 0; i < k->n_out && st == CRUN_OK; i++)
        st = emit(k, i, exec_output(e, i));
    return st;
}

/* ================= values held across iterations ================= */

typedef struct Holder {
    Tensor t;
    ValueStore store;
} Holder;

static crun_status hold(Holder *h, const Tensor *v)
{
    Tensor shape = *v;
    shape.data = NULL;
    shape.seq = NULL;
    h->t = shape;
    if (store_prepare(&h->store, &h->t) != CRUN_OK || value_copy(&h->t, v) != CRUN_OK)
        return CRUN_ERR_OUT_OF_MEMORY;
    return CRUN_OK;
}

static void holders_free(Holder *h, int n)
{
    for (int i = 0; h && i < n; i++)
        store_free(&h[i].store);
    free(h);
}

/* Stacked per-iteration outputs: slices of equal shape appended one after another. */
typedef struct Stack {
    crun_dtype dtype;
    int rank;
    int64_t dims[CRUN_MAX_RANK];
    int64_t count;
    char *data;
    size_t bytes, cap;
} Stack;

static crun_status stack_push(Stack *s, const Tensor *t, const Node *n, Diag *d)
{
    if (t->kind != VALUE_TENSOR || t->none || t->dtype == CRUN_DTYPE_STRING)
        return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "scan outputs must be numeric tensors");
    if (s->count == 0) {
        s->dtype = t->dtype;
        s->rank = t->rank;
        memcpy(s->dims, t->dims, sizeof s->dims);
    } else if (t->dtype != s->dtype || !shape_equal(t->dims, t->rank, s->dims, s->rank)) {
        return node_fail(n, d, CRUN_ERR_RUNTIME, "a scan output changed shape between iterations");
    }
    size_t b = tensor_bytes(t);
    if (s->bytes + b > s->cap) {
        size_t cap = CRUN_MAX(s->cap * 2, s->bytes + b + 64);
        char *p = realloc(s->data, cap);
        if (!p)
            return node_fail(n, d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        s->data = p;
        s->cap = cap;
    }
    if (b)
        memcpy(s->data + s->bytes, t->data, b);
    s->bytes += b;
    s->count++;
    return CRUN_OK;
}

/* ================= Loop ================= */

typedef struct LoopRun {
    KernelCtx *k;
    Executor *e;
    const Graph *body;
    int n_carried, n_scan;
    Holder *carried;
    Stack *stacks;
} LoopRun;

static crun_status loop_iteration(LoopRun *r, int64_t it, bool cond, bool *keep_going)
{
    KernelCtx *k = r->k;
    Tensor iter = {.dtype = CRUN_DTYPE_INT64, .data = &it};
    uint8_t c = cond;
    Tensor cond_in = {.dtype = CRUN_DTYPE_BOOL, .data = &c};
    exec_bind(r->e, 0, &iter);
    exec_bind(r->e, 1, &cond_in);
    for (int i = 0; i < r->n_carried; i++)
        exec_bind(r->e, 2 + i, &r->carried[i].t);
    bind_captures(k, r->e, r->body);
    crun_status st = exec_run(r->e);
    if (st != CRUN_OK)
        return fail_sub(k, st);
    *keep_going = tensor_get_int(exec_output(r->e, 0), 0) != 0;
    for (int i = 0; i < r->n_carried; i++)
        if (hold(&r->carried[i], exec_output(r->e, 1 + i)) != CRUN_OK)
            return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < r->n_scan; i++)
        if ((st = stack_push(&r->stacks[i], exec_output(r->e, 1 + r->n_carried + i), k->node, k->d)) != CRUN_OK)
            return st;
    return CRUN_OK;
}

static crun_status emit_stack(KernelCtx *k, int i, const Stack *s)
{
    Tensor t = {.dtype = s->dtype ? s->dtype : CRUN_DTYPE_FLOAT, .rank = s->rank + 1, .data = s->data};
    t.dims[0] = s->count;
    memcpy(t.dims + 1, s->dims, (size_t)s->rank * sizeof *s->dims);
    if (t.rank > CRUN_MAX_RANK)
        return node_fail(k->node, k->d, CRUN_ERR_UNSUPPORTED, "scan output rank too large");
    return emit(k, i, &t);
}

static crun_status loop_run(KernelCtx *k)
{
    const ControlParams *p = k->params;
    int n_formal = k->n_in - k->node->n_implicit;
    const Tensor *M = k->in[0], *cond = n_formal > 1 ? k->in[1] : NULL;
    LoopRun r = {.k = k, .body = p->graphs[0], .n_carried = n_formal - 2};
    r.n_scan = r.body->n_outputs - 1 - r.n_carried;
    if (r.n_carried < 0 || r.n_scan < 0 || r.n_carried + r.n_scan != k->n_out)
        return node_fail(k->node, k->d, CRUN_ERR_INVALID_MODEL, "the body's outputs do not match the node's");
    crun_status st = sub_executor(k, 0, &r.e);
    if (st != CRUN_OK)
        return st;
    r.carried = calloc((size_t)r.n_carried + 1, sizeof *r.carried);
    r.stacks = calloc((size_t)r.n_scan + 1, sizeof *r.stacks);
    if (!r.carried || !r.stacks)
        st = node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < r.n_carried && st == CRUN_OK; i++)
        if (hold(&r.carried[i], k->in[2 + i]) != CRUN_OK)
            st = node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t max = M ? tensor_get_int(M, 0) : INT64_MAX;
    bool keep = cond ? tensor_get_int(cond, 0) != 0 : true;
    for (int64_t it = 0; st == CRUN_OK && keep && it < max; it++)
        st = loop_iteration(&r, it, keep, &keep);
    for (int i = 0; i < r.n_carried && st == CRUN_OK; i++)
        st = emit(k, i, &r.carried[i].t);
    for (int i = 0; i < r.n_scan && st == CRUN_OK; i++)
        st = emit_stack(k, r.n_carried + i, &r.stacks[i]);
    holders_free(r.carried, r.n_carried);
    for (int i = 0; r.stacks && i < r.n_scan; i++)
        free(r.stacks[i].data);
    free(r.stacks);
    return st;
}

/* ================= Scan ================= */

/* Copies slice `index` along `axis` of x into dst (x's dims without that axis). */
static void take_slice(const Tensor *x, int axis, int64_t index, Tensor *dst)
{
    size_t es = dtype_size(x->dtype);
    int64_t outer = shape_numel(x->dims, axis), inner = shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)dst->data + (size_t)(o * inner) * es,
               (const char *)x->data + (size_t)((o * x->dims[axis] + index) * inner) * es, (size_t)inner * es);
    dst->dtype = x->dtype;
    dst->rank = x->rank - 1;
    for (int a = 0, b = 0; a < x->rank; a++)
        if (a != axis)
            dst->dims[b++] = x->dims[a];
}

/* Scan over the sequence axis of scan inputs; `batch` >= 0 selects one batch entry of the
 * opset 8 form (inputs [batch, seq, ...], states [batch, ...]). */
typedef struct ScanRun {
    KernelCtx *k;
    Executor *e;
    const Graph *body;
    int n_state, n_scan_in, n_scan_out, first_input;
    Holder *state;
    Holder *slices;
    Stack *stacks;
} ScanRun;

static int scan_axis(const int64_t *axes, int n, int i, int rank)
{
    int64_t a = i < n ? axes[i] : 0;
    return (int)(a < 0 ? a + rank : a);
}

static crun_status scan_loop(ScanRun *r, const Tensor *const *scan_in, int64_t steps)
{
    const ControlParams *p = r->k->params;
    for (int64_t t = 0; t < steps; t++) {
        for (int i = 0; i < r->n_scan_in; i++) {
            const Tensor *x = scan_in[i];
            int axis = scan_axis(p->in_axes, p->n_in_axes, i, x->rank);
            bool reverse = i < p->n_in_dirs && p->in_dirs[i];
            Tensor shape = {.dtype = x->dtype, .rank = x->rank - 1};
            for (int a = 0, b = 0; a < x->rank; a++)
                if (a != axis)
                    shape.dims[b++] = x->dims[a];
            r->slices[i].t = shape;
            if (store_prepare(&r->slices[i].store, &r->slices[i].t) != CRUN_OK)
                return node_fail(r->k->node, r->k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
            take_slice(x, axis, reverse ? steps - 1 - t : t, &r->slices[i].t);
            exec_bind(r->e, r->n_state + i, &r->slices[i].t);
        }
        for (int i = 0; i < r->n_state; i++)
            exec_bind(r->e, i, &r->state[i].t);
        bind_captures(r->k, r->e, r->body);
        crun_status st = exec_run(r->e);
        if (st != CRUN_OK)
            return fail_sub(r->k, st);
        for (int i = 0; i < r->n_state; i++)
            if (hold(&r->state[i], exec_output(r->e, i)) != CRUN_OK)
                return node_fail(r->k->node, r->k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; i < r->n_scan_out; i++)
            if ((st = stack_push(&r->stacks[i], exec_output(r->e, r->n_state + i), r->k->node, r->k->d)) != CRUN_OK)
                return st;
    }
    return CRUN_OK;
}

/* Writes stacked scan output i (slices in iteration order) to the node's output at its
 * axis, reversing if asked; `batch` places it in an opset 8 batch entry. */
static crun_status emit_scan_output(ScanRun *r, int i, int64_t batch, int64_t n_batch)
{
    const ControlParams *p = r->k->params;
    const Stack *s = &r->stacks[i];
    int out_rank = s->rank + 1 + (batch >= 0 ? 1 : 0);
    int axis = batch >= 0 ? 1 : scan_axis(p->out_axes, p->n_out_axes, i, s->rank + 1);
    bool reverse = i < p->n_out_dirs && p->out_dirs[i];
    Tensor *o = r->k->out[r->n_state + i];
    if (!o)
        return CRUN_OK;
    if (out_rank > CRUN_MAX_RANK)
        return node_fail(r->k->node, r->k->d, CRUN_ERR_UNSUPPORTED, "scan output rank too large");
    if (batch <= 0) {
        *o = (Tensor){.dtype = s->dtype ? s->dtype : CRUN_DTYPE_FLOAT, .rank = out_rank};
        int off = batch >= 0 ? 1 : 0;
        if (batch >= 0)
            o->dims[0] = n_batch;
        for (int a = 0, b = 0; a < s->rank + 1; a++)
            o->dims[off + a] = a == axis - off ? s->count : s->dims[b++];
        if (exec_store_output(r->k->exec, r->k->node->out[r->n_state + i], o) != CRUN_OK)
            return node_fail(r->k->node, r->k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t es = dtype_size(s->dtype);
    int slice_axis = batch >= 0 ? 0 : axis; /* within one batch entry */
    int64_t outer = shape_numel(s->dims, slice_axis), inner = shape_numel(s->dims + slice_axis, s->rank - slice_axis);
    size_t slice_bytes = (size_t)(outer * inner) * es;
    char *base = (char *)o->data + (batch >= 0 ? (size_t)batch * slice_bytes * (size_t)s->count : 0);
    for (int64_t t = 0; t < s->count; t++) {
        int64_t pos = reverse ? s->count - 1 - t : t;
        const char *src = s->data + (size_t)t * slice_bytes;
        for (int64_t q = 0; q < outer; q++)
            memcpy(base + (size_t)((q * s->count + pos) * inner) * es, src + (size_t)(q * inner) * es,
                   (size_t)inner * es);
    }
    return CRUN_OK;
}

static crun_status scan_run(KernelCtx *k)
{
    const ControlParams *p = k->params;
    bool v8 = k->node->opset < 9;
    int n_formal = k->n_in - k->node->n_implicit, first = v8 ? 1 : 0;
    ScanRun r = {.k = k, .body = p->graphs[0], .first_input = first};
    r.n_scan_in = (int)p->num_scan_inputs;
    r.n_state = n_formal - first - r.n_scan_in;
    r.n_scan_out = k->n_out - r.n_state;
    if (r.n_state < 0 || r.n_scan_in < 1 || r.n_scan_out < 0 || r.n_scan_in > MAX_SCAN || r.n_scan_out > MAX_SCAN)
        return node_fail(k->node, k->d, CRUN_ERR_INVALID_MODEL, "inputs and outputs do not match num_scan_inputs");
    crun_status st = sub_executor(k, 0, &r.e);
    if (st != CRUN_OK)
        return st;
    r.state = calloc((size_t)r.n_state + 1, sizeof *r.state);
    r.slices = calloc((size_t)r.n_scan_in + 1, sizeof *r.slices);
    r.stacks = calloc((size_t)r.n_scan_out + 1, sizeof *r.stacks);
    if (!r.state || !r.slices || !r.stacks)
        st = node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    const Tensor *const *scan_in = k->in + first + r.n_state;
    int64_t n_batch = v8 ? k->in[first]->dims[0] : -1;
    for (int64_t b = v8 ? 0 : -1; st == CRUN_OK && b < (v8 ? n_batch : 0); b++) {
        /* Opset 8: one scan per batch entry, over axis 1 of the inputs, up to sequence_lens[b]. */
        Tensor batch_in[MAX_SCAN];
        const Tensor *ins[MAX_SCAN];
        int64_t steps = 0;
        for (int i = 0; i < r.n_scan_in; i++) {
            const Tensor *x = scan_in[i];
            if (v8) {
                batch_in[i] = *x;
                batch_in[i].rank = x->rank - 1;
                memmove(batch_in[i].dims, x->dims + 1, (size_t)(x->rank - 1) * sizeof *x->dims);
                batch_in[i].data = (char *)x->data + (size_t)(b * tensor_numel(&batch_in[i])) * dtype_size(x->dtype);
                ins[i] = &batch_in[i];
            } else {
                ins[i] = x;
            }
            int axis = v8 ? 0 : scan_axis(p->in_axes, p->n_in_axes, i, x->rank);
            int64_t len = ins[i]->dims[axis];
            if (i && len != steps)
                st = node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "scan inputs differ in length");
            steps = len;
        }
        if (v8 && k->in[0])
            steps = CRUN_MIN(steps, tensor_get_int(k->in[0], b));
        for (int i = 0; i < r.n_state && st == CRUN_OK; i++) {
            const Tensor *s0 = k->in[first + i];
            Tensor v = *s0;
            if (v8) {
                v.rank = s0->rank - 1;
                memmove(v.dims, s0->dims + 1, (size_t)v.rank * sizeof *v.dims);
                v.data = (char *)s0->data + (size_t)(b * tensor_numel(&v)) * dtype_size(s0->dtype);
            }
            if (hold(&r.state[i], &v) != CRUN_OK)
                st = node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
        for (int i = 0; i < r.n_scan_out; i++)
            r.stacks[i].count = 0, r.stacks[i].bytes = 0;
        if (st == CRUN_OK)
            st = scan_loop(&r, ins, steps);
        for (int i = 0; i < r.n_state && st == CRUN_OK; i++) {
            if (!v8) {
                st = emit(k, i, &r.state[i].t);
                continue;
            }
            const Tensor *s0 = k->in[first + i];
            if (b == 0) {
                Tensor shape = *s0;
                shape.data = NULL;
                *k->out[i] = shape;
                if (exec_store_output(k->exec, k->node->out[i], k->out[i]) != CRUN_OK)
                    st = node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
            }
            size_t bytes = tensor_bytes(&r.state[i].t);
            if (st == CRUN_OK && bytes)
                memcpy((char *)k->out[i]->data + (size_t)b * bytes, r.state[i].t.data, bytes);
        }
        for (int i = 0; i < r.n_scan_out && st == CRUN_OK; i++)
            st = emit_scan_output(&r, i, v8 ? b : -1, n_batch);
    }
    holders_free(r.state, r.n_state);
    holders_free(r.slices, r.n_scan_in);
    for (int i = 0; r.stacks && i < r.n_scan_out; i++)
        free(r.stacks[i].data);
    free(r.stacks);
    return st;
}

/* ================= SequenceMap ================= */

static crun_status seqmap_run(KernelCtx *k)
{
    const ControlParams *p = k->params;
    const Graph *body = p->graphs[0];
    int n_formal = k->n_in - k->node->n_implicit;
    const Tensor *s0 = k->in[0];
    if (s0->kind != VALUE_SEQUENCE || !s0->seq)
        return node_fail(k->node, k->d, CRUN_ERR_INVALID_MODEL, "input 0 must be a sequence");
    int n = s0->seq->n;
    for (int i = 1; i < n_formal; i++)
        if (k->in[i]->kind == VALUE_SEQUENCE && k->in[i]->seq->n != n)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "input sequences differ in length");
    Executor *e;
    crun_status st = sub_executor(k, 0, &e);
    for (int j = 0; j < k->n_out && st == CRUN_OK; j++) {
        Tensor *o = k->out[j];
        *o = (Tensor){.kind = VALUE_SEQUENCE, .dtype = body->values[body->outputs[j].value].dtype};
        if (exec_store_output(k->exec, k->node->out[j], o) != CRUN_OK)
            st = node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int it = 0; it < n && st == CRUN_OK; it++) {
        for (int i = 0; i < n_formal; i++) {
            const Tensor *x = k->in[i];
            exec_bind(e, i, x->kind == VALUE_SEQUENCE ? &x->seq->items[it] : x);
        }
        bind_captures(k, e, body);
        if ((st = exec_run(e)) != CRUN_OK)
            return fail_sub(k, st);
        for (int j = 0; j < k->n_out && st == CRUN_OK; j++) {
            Sequence *out = k->out[j]->seq;
            if (seq_insert_copy(out, out->n, exec_output(e, j)) != CRUN_OK)
                st = node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return st;
}

#define CONTROL_OP(id, name, min_in, max_in, min_out, run) \
    static const KernelVariant id##_kernels[] = {{#id, ISA_SCALAR, NULL, NULL, run, NULL}, {0}}; \
    const OpDesc op_##id = {"", name, min_in, max_in, min_out, -1, OPF_NO_FOLD | OPF_KERNEL_SHAPES | OPF_ANY_VALUE, \
                            parse_control, \
                            dynamic_infer, NULL, id##_kernels};

CONTROL_OP(If, "If", 1, 1, 1, if_run)
CONTROL_OP(Loop, "Loop", 2, -1, 0, loop_run)
CONTROL_OP(Scan, "Scan", 0, -1, 1, scan_run)
CONTROL_OP(SequenceMap, "SequenceMap", 1, -1, 1, seqmap_run)
