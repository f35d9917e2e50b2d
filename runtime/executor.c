/* executor.c - binding inputs, re-planning on shape changes, running the steps. */
#include "runtime/executor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/xnnpack/region.h"
#include "runtime/eval.h"
#include "runtime/sequence.h"
#include "runtime/threadpool.h"

struct Executor {
    const Graph *g;
    const char *source;
    int n_threads;
    ThreadPool *pool;
    bool own_pool;
    Plan *plan;
    Tensor *bound;            /* per input: the value bound, kind VALUE_TENSOR with data NULL if never */
    bool *is_bound;
    PlanInput *want;          /* input shapes of the next plan */
    crun_dim_value *dims;
    size_t n_dims;
    bool defaulted;           /* a plan for default dims failed and was left for the first run */
    Tensor *vals;             /* one per graph value: what kernels see */
    const Tensor **io;        /* per step: its inputs then its outputs */
    int *io_start;
    StepSlot *slots;          /* per step */
    uint8_t *arena;
    size_t arena_cap;
    bool caller_arena;
    ValueStore *dyn;          /* per value living outside the arena */
    bool has_output;
    int64_t plans_built;
    bool profiling;
    ExecStepTime *times;      /* per step while profiling, else NULL */
    Backend backend;
    Diag diag;
};

/* ---- shapes for planning ---- */

static int64_t dim_value(const Executor *e, const char *sym, bool *defaulted)
{
    for (size_t i = 0; sym && i < e->n_dims; i++)
        if (strcmp(e->dims[i].name, sym) == 0)
            return e->dims[i].value;
    *defaulted = true;
    return 1;
}

/* The shape an input gets when nobody bound one: fixed dims as declared, symbolic ones
 * from the options (default 1). */
static crun_status default_input(const Executor *e, int i, PlanInput *pi, bool *defaulted)
{
    const Graph *g = e->g;
    const Value *v = &g->values[g->inputs[i].value];
    memset(pi, 0, sizeof *pi);
    pi->kind = v->kind;
    pi->dtype = v->dtype;
    if (v->kind == VALUE_SEQUENCE || v->optional) {
        pi->none = v->optional; /* an unbound optional holds nothing; a sequence is empty */
        return CRUN_OK;
    }
    if (!dtype_is_valid(v->dtype))
        return error_set(CRUN_ERR_INVALID_MODEL, "%s: input '%s' has no element type", e->source, g->inputs[i].name);
    if (v->rank < 0)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' has no shape in the model; bind it to give one",
                         e->source, g->inputs[i].name);
    pi->rank = v->rank;
    for (int k = 0; k < v->rank; k++) {
        pi->dims[k] =
            v->dims[k] >= 0 ? v->dims[k] : dim_value(e, v->sym[k] >= 0 ? graph_root(g)->syms[v->sym[k]] : NULL, defaulted);
        if (pi->dims[k] < 0)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' dim %d would be %lld", e->source,
                             g->inputs[i].name, k, (long long)pi->dims[k]);
    }
    return CRUN_OK;
}

/* The same symbol must have the same value in every input. */
static crun_status check_symbols(const Executor *e)
{
    const Graph *g = e->g;
    const char *const *syms = (const char *const *)graph_root(g)->syms;
    for (int i = 0; i < g->n_inputs; i++) {
        const Value *vi = &g->values[g->inputs[i].value];
        for (int k = 0; k < vi->rank && k < e->want[i].rank; k++) {
            if (vi->sym[k] < 0)
                continue;
            for (int j = 0; j <= i; j++) {
                const Value *vj = &g->values[g->inputs[j].value];
                for (int l = 0; l < vj->rank && l < e->want[j].rank && (j < i || l < k); l++)
                    if (vj->sym[l] == vi->sym[k] && e->want[j].dims[l] != e->want[i].dims[k])
                        return error_set(CRUN_ERR_INVALID_ARGUMENT,
                                         "%s: input '%s' dim %d (%s) is %lld but input '%s' dim %d is %lld",
                                         e->source, g->inputs[i].name, k, syms[vi->sym[k]],
                                         (long long)e->want[i].dims[k], g->inputs[j].name, l,
                                         (long long)e->want[j].dims[l]);
            }
        }
    }
    return CRUN_OK;
}

/* ---- materialising a plan ---- */

static crun_status ensure_arena(Executor *e, size_t need)
{
    if (need <= e->arena_cap)
        return CRUN_OK;
    if (e->caller_arena)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: the plan needs %zu bytes of arena, the caller gave %zu",
                         e->source, need, e->arena_cap);
    uint8_t *a = mem_alloc_aligned(need);
    if (!a)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory for a %zu-byte arena", e->source, need);
    mem_free(e->arena);
    e->arena = a;
    e->arena_cap = need;
    return CRUN_OK;
}

static void release_slots(Executor *e)
{
    for (int i = 0; e->slots && e->plan && i < e->plan->n_steps; i++)
        if (e->slots[i].release)
            e->slots[i].release(e->slots[i].ptr);
    free(e->slots);
    e->slots = NULL;
}

static crun_status bind_plan(Executor *e, Plan *p)
{
    const Graph *g = e->g;
    crun_status st = ensure_arena(e, p->arena_bytes);
    if (st != CRUN_OK)
        return st;
    int total = 0;
    for (int i = 0; i < p->n_steps; i++) {
        StepIo io = step_io(p, &p->steps[i]);
        total += io.n_in + io.n_out;
    }
    const Tensor **io = malloc(((size_t)total + 1) * sizeof *io);
    int *start = malloc(((size_t)p->n_steps + 1) * sizeof *start);
    StepSlot *slots = calloc((size_t)p->n_steps + 1, sizeof *slots);
    if (!io || !start || !slots) {
        free(io);
        free(start);
        free(slots);
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", e->source);
    }
    for (int v = 0; v < g->n_values; v++) {
        const PlanValue *pv = &p->vals[v];
        e->vals[v] = pv->t;
        if (pv->store == STORE_ARENA) /* no arena at all when every such value is empty */
            e->vals[v].data = e->arena ? e->arena + pv->offset : NULL;
        else if (pv->store == STORE_DYNAMIC)
            e->vals[v].data = NULL;
    }
    int k = 0;
    for (int i = 0; i < p->n_steps; i++) {
        StepIo sio = step_io(p, &p->steps[i]);
        start[i] = k;
        for (int j = 0; j < sio.n_in; j++)
            io[k++] = sio.in[j] < 0 ? NULL : &e->vals[sio.in[j]];
        for (int j = 0; j < sio.n_out; j++)
            io[k++] = sio.out[j] < 0 ? NULL : &e->vals[sio.out[j]];
    }
    start[p->n_steps] = k;
    release_slots(e);
    free(e->io);
    free(e->io_start);
    e->io = io;
    e->io_start = start;
    e->slots = slots;
    plan_free(e->plan);
    e->plan = p;
    free(e->times); /* a new plan has new steps: their counts start afresh */
    e->times = NULL;
    return e->profiling ? exec_set_profiling(e, true) : CRUN_OK;
}

crun_status exec_set_profiling(Executor *e, bool on)
{
    e->profiling = on;
    if (!on || !e->plan) {
        free(e->times);
        e->times = NULL;
        return CRUN_OK;
    }
    free(e->times);
    e->times = calloc((size_t)e->plan->n_steps + 1, sizeof *e->times);
    if (!e->times) {
        e->profiling = false;
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", e->source);
    }
    return CRUN_OK;
}

const ExecStepTime *exec_step_times(const Executor *e) { return e->times; }

static crun_status run_steps(Executor *e);

static crun_status plan_with(Executor *e, Backend backend, const XnnChoice *xc)
{
    Diag d = {0};
    Plan *p = NULL;
    crun_status st = plan_build(e->g, e->want, e->n_threads, backend, xc, &p, &d);
    if (st != CRUN_OK) {
        diag_prefix(&d, "%s", e->source);
        diag_publish(&d);
        return st;
    }
    st = bind_plan(e, p);
    if (st != CRUN_OK)
        plan_free(p);
    else
        e->plans_built++;
    e->has_output = false;
    return st;
}

#ifdef CRUN_HAVE_XNNPACK /* (without XNNPACK, auto is native: none of this is needed) */
/* The best of three runs of the bound plan after a warm-up, in ms, over a zeroed arena
 * (a run that fails counts as endless); with ms_by_node, also each step's best time, by
 * its node. */
static double time_plan(Executor *e, double *ms_by_node)
{
    bool was_profiling = e->profiling;
    if (ms_by_node && exec_set_profiling(e, true) != CRUN_OK)
        return INFINITY;
    if (e->arena)
        memset(e->arena, 0, e->plan->arena_bytes);
    double best = INFINITY;
    for (int i = 0; i < 4; i++) {
        double t0 = clock_ms();
        if (run_steps(e) != CRUN_OK) {
            best = INFINITY;
            break;
        }
        if (i == 0)
            continue;
        best = fmin(best, clock_ms() - t0);
        for (int s = 0; ms_by_node && s < e->plan->n_steps; s++)
            ms_by_node[e->plan->steps[s].node] = fmin(ms_by_node[e->plan->steps[s].node], e->times[s].last_ms);
    }
    if (ms_by_node)
        exec_set_profiling(e, was_profiling);
    e->has_output = false;
    return best;
}

static bool has_regions(const Plan *p)
{
    for (int s = 0; s < p->n_steps; s++)
        if (p->steps[s].region_io)
            return true;
    return false;
}

/* Which nodes go to XNNPACK (allow, per node): the native plan bound now is timed step by
 * step, every node XNNPACK takes is timed as a region of its own, and XNNPACK gets the
 * heavy nodes it runs faster (and the light ones between them); *any says whether there
 * is one. Returns the native plan's time (INFINITY when it could not be timed). */
static double choose_xnn_nodes(Executor *e, uint8_t *allow, bool *any)
{
    int nn = e->g->n_nodes;
    double *native = malloc(((size_t)nn + 1) * sizeof *native);
    Plan *single = NULL;
    Diag d = {0};
    XnnChoice one = {NULL, true};
    double t_native = INFINITY;
    *any = false;
    if (!native)
        return INFINITY;
    for (int i = 0; i < nn; i++)
        native[i] = INFINITY;
    t_native = time_plan(e, native);
    if (plan_build(e->g, e->want, e->n_threads, BACKEND_XNNPACK, &one, &single, &d) == CRUN_OK) {
        *any = xnn_choose_nodes(single, native, allow);
        plan_free(single);
    }
    free(native);
    return t_native;
}

static Plan *detach_plan(Executor *e)
{
    release_slots(e);
    Plan *p = e->plan;
    e->plan = NULL;
    return p;
}

/* The faster of two detached plans, each timed twice in turn (so that a change in the
 * machine's load between the two weighs on both); XNNPACK's must win by 3%, else the
 * native plan (crun's own kernels, the default) stays. The other is freed. */
static Plan *duel(Executor *e, Plan *native, double t_native, Plan *xnn, double t_xnn)
{
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 2; k++) {
            if (bind_plan(e, k ? xnn : native) != CRUN_OK) { /* no memory to bind: stay native */
                plan_free(xnn);
                return native;
            }
            double t = time_plan(e, NULL);
            *(k ? &t_xnn : &t_native) = fmin(k ? t_xnn : t_native, t);
            detach_plan(e);
        }
    Plan *keep = t_xnn < 0.97 * t_native ? xnn : native;
    plan_free(keep == xnn ? native : xnn);
    return keep;
}

/* Backend auto: a plan with XNNPACK regions where XNNPACK is faster node by node
 * (choose_xnn_nodes) and a plan with every region XNNPACK takes; the faster of the two
 * then against the native plan (duel). */
static crun_status plan_auto(Executor *e)
{
    crun_status st = plan_with(e, BACKEND_NATIVE, NULL);
    if (st != CRUN_OK || !xnn_backend_available())
        return st;
    uint8_t *allow = calloc((size_t)e->g->n_nodes + 1, 1);
    bool any = false;
    double t_native = allow ? choose_xnn_nodes(e, allow, &any) : INFINITY, t_best = INFINITY;
    if (t_native == INFINITY) { /* an optimisation only: native it is */
        free(allow);
        return CRUN_OK;
    }
    Plan *native = detach_plan(e), *best = NULL;
    XnnChoice mix = {allow, false};
    for (int k = any ? 0 : 1; k < 2; k++) {
        if (plan_with(e, BACKEND_XNNPACK, k == 0 ? &mix : NULL) != CRUN_OK)
            continue;
        double t = has_regions(e->plan) ? time_plan(e, NULL) : INFINITY;
        Plan *p = detach_plan(e);
        if (t < t_best) {
            plan_free(best);
            best = p, t_best = t;
        } else {
            plan_free(p);
        }
    }
    free(allow);
    Plan *keep = best ? duel(e, native, t_native, best, t_best) : native;
    st = bind_plan(e, keep);
    if (st != CRUN_OK)
        plan_free(keep);
    return st;
}

#endif

static crun_status replan(Executor *e)
{
#ifdef CRUN_HAVE_XNNPACK
    if (e->backend == BACKEND_AUTO)
        return plan_auto(e);
#endif
    return plan_with(e, e->backend == BACKEND_XNNPACK ? BACKEND_XNNPACK : BACKEND_NATIVE, NULL);
}

static bool shapes_changed(const Executor *e)
{
    if (!e->plan)
        return true;
    for (int i = 0; i < e->g->n_inputs; i++) {
        const PlanInput *a = &e->want[i], *b = &e->plan->inputs[i];
        if (a->dtype != b->dtype || a->kind != b->kind || a->none != b->none ||
            !shape_equal(a->dims, a->rank, b->dims, b->rank))
            return true;
    }
    return false;
}

/* ---- create / free ---- */

static crun_status copy_dims(Executor *e, const ExecOptions *o)
{
    if (!o->n_dims)
        return CRUN_OK;
    if (!o->dims)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: n_dims > 0 but dims is NULL", e->source);
    e->dims = calloc(o->n_dims, sizeof *e->dims);
    if (!e->dims)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    e->n_dims = o->n_dims;
    for (size_t i = 0; i < o->n_dims; i++) {
        if (!o->dims[i].name || o->dims[i].value < 0)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: dims[%zu] is invalid", e->source, i);
        e->dims[i].value = o->dims[i].value;
        if (!(e->dims[i].name = str_dup(o->dims[i].name)))
            return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return CRUN_OK;
}

static crun_status exec_init(Executor *e, const ExecOptions *o)
{
    const Graph *g = e->g;
    e->n_threads = o->n_threads > 0 ? o->n_threads : cpu_count();
    e->backend = o->backend;
    if (o->arena) {
        if ((uintptr_t)o->arena % CRUN_ALIGN)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: the arena must be 64-byte aligned", e->source);
        e->arena = o->arena;
        e->arena_cap = o->arena_bytes;
        e->caller_arena = true;
    }
    crun_status st = copy_dims(e, o);
    if (st != CRUN_OK)
        return st;
    e->bound = calloc((size_t)g->n_inputs + 1, sizeof *e->bound);
    e->is_bound = calloc((size_t)g->n_inputs + 1, sizeof *e->is_bound);
    e->want = calloc((size_t)g->n_inputs + 1, sizeof *e->want);
    e->vals = calloc((size_t)g->n_values + 1, sizeof *e->vals);
    e->dyn = calloc((size_t)g->n_values + 1, sizeof *e->dyn);
    e->own_pool = o->pool == NULL;
    e->pool = o->pool ? o->pool : pool_create(e->n_threads);
    if (!e->bound || !e->is_bound || !e->want || !e->vals || !e->dyn || !e->pool)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", e->source);
    /* An input with no usable declared shape must be bound before planning; subgraph
     * inputs are often declared that way. */
    for (int i = 0; i < g->n_inputs; i++)
        if (default_input(e, i, &e->want[i], &e->defaulted) != CRUN_OK)
            e->want[i].rank = -1;
    return CRUN_OK;
}

crun_status exec_create(const Graph *g, const char *source, const ExecOptions *o, Executor **out)
{
    *out = NULL;
    Executor *e = calloc(1, sizeof *e);
    if (!e)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", source);
    e->g = g;
    e->source = source;
    crun_status st = exec_init(e, o);
    if (st != CRUN_OK) {
        exec_free(e);
        return st;
    }
    *out = e;
    return CRUN_OK;
}

void exec_free(Executor *e)
{
    if (!e)
        return;
    release_slots(e);
    free(e->times);
    if (e->own_pool)
        pool_free(e->pool);
    plan_free(e->plan);
    if (!e->caller_arena)
        mem_free(e->arena);
    for (int v = 0; e->dyn && v < e->g->n_values; v++)
        store_free(&e->dyn[v]);
    for (size_t i = 0; i < e->n_dims; i++)
        free((char *)e->dims[i].name);
    free(e->dims);
    free(e->dyn);
    free(e->io);
    free(e->io_start);
    free(e->vals);
    free(e->bound);
    free(e->is_bound);
    free(e->want);
    free(e);
}

/* ---- binding and planning ---- */

crun_status exec_bind(Executor *e, int i, const Tensor *v)
{
    e->bound[i] = *v;
    e->is_bound[i] = true;
    PlanInput *w = &e->want[i];
    w->dtype = v->dtype;
    w->kind = v->kind;
    w->none = v->none;
    w->rank = v->kind == VALUE_TENSOR && !v->none ? v->rank : 0;
    memcpy(w->dims, v->dims, sizeof w->dims);
    e->has_output = false;
    return CRUN_OK;
}

/* A compiled model plans and runs under its own ISA (see Graph.isa_pinned); returns the
 * thread's limit to restore. */
static Isa enter_model_isa(const Executor *e)
{
    const Graph *r = graph_root(e->g);
    Isa prev = isa_get_thread_limit();
    if (r->isa_pinned)
        isa_set_thread_limit((Isa)r->isa);
    return prev;
}

static crun_status plan_now(Executor *e)
{
    for (int i = 0; i < e->g->n_inputs; i++)
        if (!e->is_bound[i] && e->want[i].rank < 0) {
            PlanInput again;
            bool defaulted;
            return default_input(e, i, &again, &defaulted); /* says what is missing */
        }
    crun_status st = check_symbols(e);
    if (st == CRUN_OK && shapes_changed(e))
        st = replan(e);
    return st;
}

crun_status exec_plan(Executor *e)
{
    Isa prev = enter_model_isa(e);
    crun_status st = plan_now(e);
    isa_set_thread_limit(prev);
    return st;
}

crun_status exec_store_output(Executor *e, int value, Tensor *t) { return store_prepare(&e->dyn[value], t); }

/* A kernel that shapes its own outputs (control flow) runs without infer or storage. */
static crun_status run_self_shaped(Executor *e, const Node *n, const Tensor *const *in, Tensor *const *out,
                                   StepSlot *slot)
{
    const KernelVariant *kv = n->op->kernels;
    for (int k = 0; k < n->n_out; k++)
        if (out[k])
            *out[k] = (Tensor){0};
    KernelCtx kc = {.node = n, .params = n->params, .n_in = n->n_in, .n_out = n->n_out, .in = in, .out = out,
                    .kdata = kv->data, .pool = e->pool, .d = &e->diag, .slot = slot, .exec = e};
    return kv->run(&kc);
}

static crun_status run_dynamic(Executor *e, const Node *n, const Tensor *const *in, Tensor *const *out, StepSlot *slot)
{
    if (n->op->flags & OPF_KERNEL_SHAPES)
        return run_self_shaped(e, n, in, out, slot);
    Diag *d = &e->diag;
    bool needs = false;
    crun_status st = node_infer(n, in, n->n_in, out, n->n_out, &needs, d);
    if (st == CRUN_OK && needs)
        st = node_fail(n, d, CRUN_ERR_RUNTIME, "output shape cannot be determined");
    for (int k = 0; st == CRUN_OK && k < n->n_out; k++)
        if (out[k] && exec_store_output(e, n->out[k], out[k]) != CRUN_OK)
            st = node_fail(n, d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for output %d", k);
    if (st != CRUN_OK)
        return st;
    PrepCtx pc = {.node = n, .params = n->params, .n_in = n->n_in, .n_out = n->n_out, .in = in,
                  .out = (const Tensor *const *)out, .n_threads = e->n_threads, .d = d};
    const KernelVariant *kv = op_choose_kernel(n->op, &pc);
    if (!kv)
        return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "no kernel for these input types");
    pc.kdata = kv->data;
    if (kv->prepare && (st = kv->prepare(&pc)) != CRUN_OK)
        return st;
    void *ws = pc.ws_bytes ? mem_alloc_aligned(pc.ws_bytes) : NULL;
    if (pc.ws_bytes && !ws)
        st = node_fail(n, d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    KernelCtx kc = {.node = n, .params = n->params, .n_in = n->n_in, .n_out = n->n_out, .in = in, .out = out,
                    .kdata = kv->data, .state = pc.state, .ws = ws, .pool = e->pool, .d = d, .slot = slot,
                    .exec = e};
    if (st == CRUN_OK && !node_outputs_empty(n, out, n->n_out))
        st = kv->run(&kc);
    mem_free(ws);
    mem_free(pc.state);
    return st;
}

/* Copies the bound inputs in (unbound ones are zero, empty or none). */
static crun_status copy_inputs(Executor *e)
{
    for (int i = 0; i < e->g->n_inputs; i++) {
        int v = e->g->inputs[i].value;
        Tensor *t = &e->vals[v];
        const Tensor *src = e->is_bound[i] ? &e->bound[i] : NULL;
        if (e->plan->vals[v].store == STORE_DYNAMIC && exec_store_output(e, v, t) != CRUN_OK)
            return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory for input '%s'", e->source,
                             e->g->inputs[i].name);
        if (t->none)
            continue;
        if (!src) {
            if (t->kind == VALUE_TENSOR && t->dtype != CRUN_DTYPE_STRING && tensor_bytes(t))
                memset(t->data, 0, tensor_bytes(t));
            continue;
        }
        if (value_copy(t, src) != CRUN_OK)
            return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory for input '%s'", e->source,
                             e->g->inputs[i].name);
    }
    return CRUN_OK;
}

static crun_status run_steps(Executor *e)
{
    const Plan *p = e->plan;
    const Graph *g = e->g;
    double t_run = e->times ? clock_ms() : 0, t0 = t_run;
    for (int i = 0; i < p->n_steps; i++) {
        const PlanStep *st = &p->steps[i];
        const Node *n = &g->nodes[st->node];
        int n_in = st->region_io ? st->n_region_in : n->n_in, n_out = st->region_io ? st->n_region_out : n->n_out;
        const Tensor *const *in = e->io + e->io_start[i];
        Tensor *const *out = (Tensor *const *)(e->io + e->io_start[i] + n_in);
        crun_status r;
        if (st->dynamic) {
            r = run_dynamic(e, n, in, out, &e->slots[i]);
        } else {
            KernelCtx kc = {.node = n, .params = n->params, .n_in = n_in, .n_out = n_out, .in = in, .out = out,
                            .kdata = st->kv->data, .state = st->state,
                            .ws = st->ws_bytes ? e->arena + st->ws_offset : NULL,
                            .pool = e->pool, .d = &e->diag, .slot = &e->slots[i], .exec = e};
            r = node_outputs_empty(n, out, n_out) ? CRUN_OK : st->kv->run(&kc);
        }
        if (r != CRUN_OK)
            return r;
        if (e->times) { /* profiling: a clock read per step (no call into the kernel) */
            double t1 = clock_ms();
            ExecStepTime *tm = &e->times[i];
            tm->runs++;
            tm->total_ms += t1 - t0;
            tm->last_start_ms = t0 - t_run;
            tm->last_ms = t1 - t0;
            t0 = t1;
        }
    }
    return CRUN_OK;
}

static crun_status run_now(Executor *e);

crun_status exec_run(Executor *e)
{
    Isa prev = enter_model_isa(e);
    crun_status st = run_now(e);
    isa_set_thread_limit(prev);
    return st;
}

static crun_status run_now(Executor *e)
{
    e->has_output = false;
    crun_status st = plan_now(e);
    if (st == CRUN_OK)
        st = copy_inputs(e);
    if (st != CRUN_OK)
        return st;
    e->diag.status = CRUN_OK;
    st = run_steps(e);
    if (st != CRUN_OK) {
        diag_prefix(&e->diag, "%s", e->source);
        diag_publish(&e->diag);
        return st;
    }
    e->has_output = true;
    return CRUN_OK;
}

const Tensor *exec_output(const Executor *e, int i)
{
    return e->has_output && i >= 0 && i < e->g->n_outputs ? &e->vals[e->g->outputs[i].value] : NULL;
}

const Plan *exec_current_plan(const Executor *e) { return e->plan; }
const Tensor *exec_values(const Executor *e) { return e->vals; }
int exec_threads(const Executor *e) { return e->n_threads; }
int64_t exec_plan_count(const Executor *e) { return e->plans_built; }
bool exec_defaulted(const Executor *e) { return e->defaulted; }
