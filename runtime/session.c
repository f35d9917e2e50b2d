/* session.c - crun_session_*: binding inputs, (re)planning when shapes change, running
 * the steps, handing out outputs. */
#include <stdlib.h>
#include <string.h>

#include "runtime/eval.h"
#include "runtime/model.h"
#include "runtime/plan.h"
#include "runtime/threadpool.h"

typedef struct BoundInput {
    bool bound;
    crun_dtype dtype;
    int rank;
    int64_t dims[CRUN_MAX_RANK];
    const void *data;
} BoundInput;

typedef struct DynBuf {
    void *ptr;
    size_t cap;
} DynBuf;

struct crun_session {
    const crun_model *model;
    const Graph *g;
    int n_threads;
    ThreadPool *pool;
    Plan *plan;
    BoundInput *bound;
    PlanInput *want;          /* input shapes of the next run */
    crun_dim_value *dims;     /* copy of the options' symbol values */
    size_t n_dims;
    Tensor *vals;             /* one per graph value: what kernels see */
    const Tensor **io;        /* per step: its inputs then its outputs */
    int *io_start;
    uint8_t *arena;
    size_t arena_cap;
    bool caller_arena;
    DynBuf *dyn;              /* per value, for dynamic values */
    bool has_output;
    Diag diag;
};

void crun_session_options_init(crun_session_options *o)
{
    memset(o, 0, sizeof *o);
}

/* ---- shapes for planning ---- */

static int64_t dim_value(const crun_session *s, const char *sym, bool *defaulted)
{
    for (size_t i = 0; sym && i < s->n_dims; i++)
        if (strcmp(s->dims[i].name, sym) == 0)
            return s->dims[i].value;
    *defaulted = true;
    return 1;
}

/* The shape an input gets when the caller did not bind one: fixed dims as declared,
 * symbolic ones from the options (default 1). */
static crun_status default_input(const crun_session *s, int i, PlanInput *pi, bool *defaulted)
{
    const Graph *g = s->g;
    const Value *v = &g->values[g->inputs[i].value];
    if (v->kind != VALUE_TENSOR)
        return error_set(CRUN_ERR_UNSUPPORTED, "%s: input '%s' is not a tensor", s->model->source, g->inputs[i].name);
    if (!dtype_is_valid(v->dtype))
        return error_set(CRUN_ERR_INVALID_MODEL, "%s: input '%s' has no element type", s->model->source,
                         g->inputs[i].name);
    if (v->rank < 0)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' has no shape in the model; bind it to give one",
                         s->model->source, g->inputs[i].name);
    pi->dtype = v->dtype;
    pi->rank = v->rank;
    for (int k = 0; k < v->rank; k++) {
        pi->dims[k] =
            v->dims[k] >= 0 ? v->dims[k] : dim_value(s, v->sym[k] >= 0 ? g->syms[v->sym[k]] : NULL, defaulted);
        if (pi->dims[k] < 0)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' dim %d would be %lld", s->model->source,
                             g->inputs[i].name, k, (long long)pi->dims[k]);
    }
    return CRUN_OK;
}

/* The same symbol must have the same value in every input. */
static crun_status check_symbols(const crun_session *s)
{
    const Graph *g = s->g;
    for (int i = 0; i < g->n_inputs; i++) {
        const Value *vi = &g->values[g->inputs[i].value];
        for (int k = 0; k < vi->rank && k < s->want[i].rank; k++) {
            if (vi->sym[k] < 0)
                continue;
            for (int j = 0; j <= i; j++) {
                const Value *vj = &g->values[g->inputs[j].value];
                for (int l = 0; l < vj->rank && l < s->want[j].rank && (j < i || l < k); l++)
                    if (vj->sym[l] == vi->sym[k] && s->want[j].dims[l] != s->want[i].dims[k])
                        return error_set(CRUN_ERR_INVALID_ARGUMENT,
                                         "%s: input '%s' dim %d (%s) is %lld but input '%s' dim %d is %lld",
                                         s->model->source, g->inputs[i].name, k, g->syms[vi->sym[k]],
                                         (long long)s->want[i].dims[k], g->inputs[j].name, l,
                                         (long long)s->want[j].dims[l]);
            }
        }
    }
    return CRUN_OK;
}

/* ---- materialising a plan ---- */

static crun_status ensure_arena(crun_session *s, size_t need)
{
    if (need <= s->arena_cap)
        return CRUN_OK;
    if (s->caller_arena)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: the plan needs %zu bytes of arena, the caller gave %zu",
                         s->model->source, need, s->arena_cap);
    uint8_t *a = mem_alloc_aligned(need);
    if (!a)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory for a %zu-byte arena", s->model->source, need);
    mem_free(s->arena);
    s->arena = a;
    s->arena_cap = need;
    return CRUN_OK;
}

static crun_status bind_plan(crun_session *s, Plan *p)
{
    const Graph *g = s->g;
    crun_status st = ensure_arena(s, p->arena_bytes);
    if (st != CRUN_OK)
        return st;
    int total = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const Node *n = &g->nodes[p->steps[i].node];
        total += n->n_in + n->n_out;
    }
    const Tensor **io = malloc(((size_t)total + 1) * sizeof *io);
    int *start = malloc(((size_t)p->n_steps + 1) * sizeof *start);
    if (!io || !start) {
        free(io);
        free(start);
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", s->model->source);
    }
    for (int v = 0; v < g->n_values; v++) {
        const PlanValue *pv = &p->vals[v];
        s->vals[v] = pv->t;
        if (pv->store == STORE_ARENA)
            s->vals[v].data = s->arena + pv->offset;
        else if (pv->store == STORE_DYNAMIC)
            s->vals[v].data = NULL;
    }
    int k = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const Node *n = &g->nodes[p->steps[i].node];
        start[i] = k;
        for (int j = 0; j < n->n_in; j++)
            io[k++] = n->in[j] < 0 ? NULL : &s->vals[n->in[j]];
        for (int j = 0; j < n->n_out; j++)
            io[k++] = n->out[j] < 0 ? NULL : &s->vals[n->out[j]];
    }
    start[p->n_steps] = k;
    free(s->io);
    free(s->io_start);
    s->io = io;
    s->io_start = start;
    plan_free(s->plan);
    s->plan = p;
    return CRUN_OK;
}

static crun_status replan(crun_session *s)
{
    Diag d = {0};
    Plan *p = NULL;
    crun_status st = plan_build(s->g, s->want, s->n_threads, &p, &d);
    if (st != CRUN_OK) {
        diag_prefix(&d, "%s", s->model->source);
        diag_publish(&d);
        return st;
    }
    st = bind_plan(s, p);
    if (st != CRUN_OK)
        plan_free(p);
    s->has_output = false;
    return st;
}

static bool shapes_changed(const crun_session *s)
{
    if (!s->plan)
        return true;
    for (int i = 0; i < s->g->n_inputs; i++) {
        const PlanInput *a = &s->want[i], *b = &s->plan->inputs[i];
        if (a->dtype != b->dtype || !shape_equal(a->dims, a->rank, b->dims, b->rank))
            return true;
    }
    return false;
}

/* ---- create / free ---- */

static crun_status copy_dims(crun_session *s, const crun_session_options *o)
{
    if (!o->n_dims)
        return CRUN_OK;
    if (!o->dims)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_create: n_dims > 0 but dims is NULL");
    s->dims = calloc(o->n_dims, sizeof *s->dims);
    if (!s->dims)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    s->n_dims = o->n_dims;
    for (size_t i = 0; i < o->n_dims; i++) {
        if (!o->dims[i].name || o->dims[i].value < 0)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_create: dims[%zu] is invalid", i);
        s->dims[i].value = o->dims[i].value;
        if (!(s->dims[i].name = str_dup(o->dims[i].name)))
            return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return CRUN_OK;
}

static crun_status session_init(crun_session *s, const crun_model *m, const crun_session_options *o)
{
    s->model = m;
    s->g = m->graph;
    const Graph *g = s->g;
    s->n_threads = o->threads > 0 ? o->threads : cpu_count();
    if (o->arena) {
        if ((uintptr_t)o->arena % CRUN_ALIGN)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_create: the arena must be 64-byte aligned");
        s->arena = o->arena;
        s->arena_cap = o->arena_bytes;
        s->caller_arena = true;
    }
    crun_status st = copy_dims(s, o);
    if (st != CRUN_OK)
        return st;
    s->bound = calloc((size_t)g->n_inputs + 1, sizeof *s->bound);
    s->want = calloc((size_t)g->n_inputs + 1, sizeof *s->want);
    s->vals = calloc((size_t)g->n_values + 1, sizeof *s->vals);
    s->dyn = calloc((size_t)g->n_values + 1, sizeof *s->dyn);
    s->pool = pool_create(s->n_threads);
    if (!s->bound || !s->want || !s->vals || !s->dyn || !s->pool)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    bool defaulted = false;
    for (int i = 0; i < g->n_inputs; i++)
        if ((st = default_input(s, i, &s->want[i], &defaulted)) != CRUN_OK)
            return st;
    if ((st = check_symbols(s)) != CRUN_OK)
        return st;
    st = replan(s);
    /* Dims nobody gave a value may not suit the model (a 1x1 image for a CNN): then the
     * plan waits for the first run, which has the bound inputs' real shapes. */
    if (st != CRUN_OK && defaulted && !s->caller_arena)
        st = CRUN_OK;
    return st;
}

crun_status crun_session_create(const crun_model *m, const crun_session_options *o, crun_session **out)
{
    if (!out)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_create: out is NULL");
    *out = NULL;
    if (!m)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_create: model is NULL");
    crun_session_options defaults;
    crun_session_options_init(&defaults);
    crun_session *s = calloc(1, sizeof *s);
    if (!s)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    crun_status st = session_init(s, m, o ? o : &defaults);
    if (st != CRUN_OK) {
        crun_session_free(s);
        return st;
    }
    *out = s;
    return CRUN_OK;
}

crun_status crun_model_arena_bytes(const crun_model *m, const crun_session_options *o, size_t *bytes)
{
    if (!bytes)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_arena_bytes: bytes is NULL");
    crun_session_options plan_only;
    crun_session_options_init(&plan_only);
    if (o)
        plan_only = *o;
    plan_only.arena = NULL; /* plan with a crun-owned arena just to measure it */
    crun_session *s = NULL;
    crun_status st = crun_session_create(m, &plan_only, &s);
    if (st == CRUN_OK && !s->plan)
        st = error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_arena_bytes: give values for the symbolic dims");
    if (st == CRUN_OK)
        *bytes = s->plan->arena_bytes;
    crun_session_free(s);
    return st;
}

void crun_session_free(crun_session *s)
{
    if (!s)
        return;
    pool_free(s->pool);
    plan_free(s->plan);
    if (!s->caller_arena)
        mem_free(s->arena);
    if (s->dyn)
        for (int v = 0; v < s->g->n_values; v++)
            mem_free(s->dyn[v].ptr);
    for (size_t i = 0; i < s->n_dims; i++)
        free((char *)s->dims[i].name);
    free(s->dims);
    free(s->dyn);
    free(s->io);
    free(s->io_start);
    free(s->vals);
    free(s->bound);
    free(s->want);
    free(s);
}

/* ---- inputs ---- */

crun_status crun_session_set_input(crun_session *s, int32_t index, crun_dtype dtype, int32_t rank,
                                   const int64_t *dims, const void *data)
{
    if (!s || index < 0 || index >= s->g->n_inputs)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_set_input: no input %d", (int)index);
    const GraphIO *io = &s->g->inputs[index];
    const Value *v = &s->g->values[io->value];
    const char *src = s->model->source;
    if (rank < 0 || rank > CRUN_MAX_RANK || (rank && !dims))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': invalid rank %d", src, io->name, (int)rank);
    if (v->dtype && dtype != v->dtype)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' is %s, got %s", src, io->name,
                         dtype_name(v->dtype), dtype_name(dtype));
    if (!dtype_is_valid((int)dtype) || dtype == CRUN_DTYPE_STRING)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': unsupported dtype %d", src, io->name, (int)dtype);
    if (v->rank >= 0 && rank != v->rank)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' has rank %d, got rank %d", src, io->name, v->rank,
                         (int)rank);
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': dim %d is negative", src, io->name, k);
        if (v->rank >= 0 && v->sym[k] < 0 && v->dims[k] >= 0 && dims[k] != v->dims[k])
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': dim %d is %lld, the model expects %lld", src,
                             io->name, k, (long long)dims[k], (long long)v->dims[k]);
    }
    if (shape_numel(dims, rank) < 0)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': shape is too large", src, io->name);
    if (!data && shape_numel(dims, rank) > 0)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': data is NULL", src, io->name);
    BoundInput *b = &s->bound[index];
    b->bound = true;
    b->dtype = dtype;
    b->rank = rank;
    memcpy(b->dims, dims, (size_t)rank * sizeof *dims);
    b->data = data;
    s->has_output = false;
    return CRUN_OK;
}

/* ---- running ---- */

static crun_status run_dynamic(crun_session *s, const Node *n, const Tensor *const *in, Tensor *const *out)
{
    Diag *d = &s->diag;
    bool needs = false;
    crun_status st = node_infer(n, in, n->n_in, out, n->n_out, &needs, d);
    if (st == CRUN_OK && needs)
        st = node_fail(n, d, CRUN_ERR_RUNTIME, "output shape cannot be determined");
    for (int k = 0; st == CRUN_OK && k < n->n_out; k++) {
        if (!out[k])
            continue;
        DynBuf *b = &s->dyn[n->out[k]];
        size_t need = tensor_bytes(out[k]);
        if (need > b->cap) {
            mem_free(b->ptr);
            b->ptr = mem_calloc_aligned(need);
            b->cap = b->ptr ? need : 0;
            if (!b->ptr)
                st = node_fail(n, d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for output %d", k);
        }
        out[k]->data = b->ptr;
    }
    if (st != CRUN_OK)
        return st;
    PrepCtx pc = {.node = n, .params = n->params, .n_in = n->n_in, .n_out = n->n_out, .in = in,
                  .out = (const Tensor *const *)out, .n_threads = s->n_threads, .d = d};
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
                    .kdata = kv->data, .state = pc.state, .ws = ws, .pool = s->pool, .d = d};
    if (st == CRUN_OK)
        st = kv->run(&kc);
    mem_free(ws);
    mem_free(pc.state);
    return st;
}

static void copy_inputs(crun_session *s)
{
    for (int i = 0; i < s->g->n_inputs; i++) {
        Tensor *t = &s->vals[s->g->inputs[i].value];
        size_t bytes = tensor_bytes(t);
        if (s->bound[i].bound && bytes)
            memcpy(t->data, s->bound[i].data, bytes);
        else if (bytes)
            memset(t->data, 0, bytes);
    }
}

static crun_status run_steps(crun_session *s)
{
    const Plan *p = s->plan;
    const Graph *g = s->g;
    for (int i = 0; i < p->n_steps; i++) {
        const PlanStep *st = &p->steps[i];
        const Node *n = &g->nodes[st->node];
        const Tensor *const *in = s->io + s->io_start[i];
        Tensor *const *out = (Tensor *const *)(s->io + s->io_start[i] + n->n_in);
        crun_status r;
        if (st->dynamic) {
            r = run_dynamic(s, n, in, out);
        } else {
            KernelCtx kc = {.node = n, .params = n->params, .n_in = n->n_in, .n_out = n->n_out, .in = in, .out = out,
                            .kdata = st->kv->data, .state = st->state, .ws = s->arena + st->ws_offset,
                            .pool = s->pool, .d = &s->diag};
            r = st->kv->run(&kc);
        }
        if (r != CRUN_OK)
            return r;
    }
    return CRUN_OK;
}

crun_status crun_session_plan(crun_session *s)
{
    if (!s)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_plan: session is NULL");
    for (int i = 0; i < s->g->n_inputs; i++)
        if (s->bound[i].bound) {
            s->want[i].dtype = s->bound[i].dtype;
            s->want[i].rank = s->bound[i].rank;
            memcpy(s->want[i].dims, s->bound[i].dims, sizeof s->want[i].dims);
        }
    crun_status st = check_symbols(s);
    if (st == CRUN_OK && shapes_changed(s))
        st = replan(s);
    return st;
}

crun_status crun_session_run(crun_session *s)
{
    if (!s)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_run: session is NULL");
    s->has_output = false;
    crun_status st = crun_session_plan(s);
    if (st != CRUN_OK)
        return st;
    copy_inputs(s);
    s->diag.status = CRUN_OK;
    st = run_steps(s);
    if (st != CRUN_OK) {
        diag_prefix(&s->diag, "%s", s->model->source);
        diag_publish(&s->diag);
        return st;
    }
    s->has_output = true;
    return CRUN_OK;
}

/* ---- outputs and introspection ---- */

crun_status crun_session_get_output(const crun_session *s, int32_t index, crun_tensor *out)
{
    if (!s || !out || index < 0 || index >= s->g->n_outputs)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_get_output: no output %d", (int)index);
    if (!s->has_output)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_get_output: the session has not run since its "
                                                    "inputs changed");
    const GraphIO *io = &s->g->outputs[index];
    const Tensor *t = &s->vals[io->value];
    memset(out, 0, sizeof *out);
    out->name = io->name;
    out->dtype = t->dtype;
    out->rank = t->rank;
    memcpy(out->dims, t->dims, (size_t)t->rank * sizeof *t->dims);
    out->data = t->data;
    out->size_bytes = tensor_bytes(t);
    return CRUN_OK;
}

crun_status crun_session_memory_info(const crun_session *s, crun_memory_info *out)
{
    if (!s || !out)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_memory_info: NULL argument");
    if (!s->plan)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_memory_info: not planned yet (bind inputs and run)");
    out->arena_bytes = s->plan->arena_bytes;
    out->lower_bound_bytes = s->plan->lower_bound;
    out->naive_bytes = s->plan->naive_bytes;
    out->weight_bytes = s->plan->weight_bytes;
    return CRUN_OK;
}

int32_t crun_session_step_count(const crun_session *s) { return s && s->plan ? s->plan->n_steps : 0; }
int32_t crun_session_threads(const crun_session *s) { return s ? s->n_threads : 0; }

crun_status crun_session_step_info(const crun_session *s, int32_t index, crun_step_info *out)
{
    if (!s || !out || index < 0 || index >= crun_session_step_count(s))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_step_info: no step %d", (int)index);
    const PlanStep *st = &s->plan->steps[index];
    const Node *n = &s->g->nodes[st->node];
    memset(out, 0, sizeof *out);
    out->node_name = n->name;
    out->op_type = n->op_type;
    out->fused = n->fused;
    out->kernel = st->kv ? st->kv->name : "dynamic";
    out->isa = st->kv ? isa_name(st->kv->isa) : "-";
    out->arena_offset = -1;
    int v = n->n_out > 0 ? n->out[0] : -1;
    if (v >= 0) {
        const PlanValue *pv = &s->plan->vals[v];
        const Tensor *t = &s->vals[v];
        out->precision = t->dtype;
        out->rank = st->dynamic && !s->has_output ? -1 : t->rank;
        memcpy(out->dims, t->dims, sizeof out->dims);
        if (pv->store == STORE_ARENA)
            out->arena_offset = (int64_t)pv->offset;
        out->size_bytes = (int64_t)pv->bytes;
    }
    out->flops = st->flops;
    return CRUN_OK;
}
