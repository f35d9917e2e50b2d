/* session.c - crun_session_*: the public API over an executor of the model's main graph,
 * with the checks of caller input against the model's declared inputs. */
#include <stdlib.h>
#include <string.h>

#include "loaders/crun_file.h"
#include "platforms/xnnpack/region.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/sequence.h"

struct crun_session {
    const crun_model *model;
    HeapRegion *region; /* static mode: what runs allocate from (see heap.h) */
    Executor *exec;
    Tensor *items;   /* scratch for crun_session_set_input_sequence: bound sequences */
    Sequence *seqs;  /* per input, the items of a bound sequence (borrowed data) */
};

void crun_session_options_init(crun_session_options *o) { memset(o, 0, sizeof *o); }

int32_t crun_backend_available(crun_backend backend)
{
    return backend == CRUN_BACKEND_NATIVE || backend == CRUN_BACKEND_AUTO ||
           (backend == CRUN_BACKEND_XNNPACK && xnn_backend_available());
}

/* The options' backend, or CRUN_BACKEND's when the options leave the default. */
static crun_status session_backend(const crun_model *m, const crun_session_options *o, Backend *out)
{
    crun_backend b = o->backend;
    const char *env = getenv("CRUN_BACKEND");
    if (b == CRUN_BACKEND_NATIVE && env && *env) {
        if (!strcmp(env, "xnnpack"))
            b = CRUN_BACKEND_XNNPACK;
        else if (!strcmp(env, "auto"))
            b = CRUN_BACKEND_AUTO;
        else if (strcmp(env, "native"))
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "CRUN_BACKEND: unknown backend '%s' (native, xnnpack, auto)",
                             env);
    }
    if (b != CRUN_BACKEND_NATIVE && b != CRUN_BACKEND_XNNPACK && b != CRUN_BACKEND_AUTO)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_create: unknown backend %d", (int)b);
    if (b == CRUN_BACKEND_XNNPACK && !xnn_backend_available())
        return error_set(CRUN_ERR_UNSUPPORTED, "this build of crun has no XNNPACK backend (build it with "
                                               "libxnnpack-dev installed)");
    /* A compiled model's kernels and packed weights are crun's. */
    *out = m->compiled ? BACKEND_NATIVE : b == CRUN_BACKEND_XNNPACK ? BACKEND_XNNPACK
                       : b == CRUN_BACKEND_AUTO ? BACKEND_AUTO : BACKEND_NATIVE;
    return CRUN_OK;
}

static ExecOptions exec_options(const crun_session_options *o, Backend backend)
{
    ExecOptions eo = {.n_threads = o->threads, .arena = o->arena, .arena_bytes = o->arena_bytes, .dims = o->dims,
                      .n_dims = o->n_dims, .backend = backend};
    return eo;
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
    if (!o)
        o = &defaults;
    Backend backend;
    crun_status bst = session_backend(m, o, &backend);
    if (bst != CRUN_OK)
        return bst;
    crun_session *s = calloc(1, sizeof *s);
    if (!s)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    s->model = m;
    s->seqs = calloc((size_t)m->graph->n_inputs + 1, sizeof *s->seqs);
    ExecOptions eo = exec_options(o, backend);
    crun_status st = s->seqs ? exec_create(m->graph, m->source, &eo, &s->exec)
                             : error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    if (st == CRUN_OK) {
        st = exec_plan(s->exec);
        /* Dims nobody gave a value may not suit the model (a 1x1 image for a CNN): then
         * the plan waits for the first run, which has the bound inputs' real shapes. A
         * caller arena needs the plan now. */
        if (st != CRUN_OK && exec_defaulted(s->exec) && !o->arena)
            st = CRUN_OK;
    }
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
    const Plan *p = st == CRUN_OK ? exec_current_plan(s->exec) : NULL;
    if (st == CRUN_OK && !p)
        st = error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_arena_bytes: give values for the symbolic dims");
    if (st == CRUN_OK)
        *bytes = p->arena_bytes;
    crun_session_free(s);
    return st;
}

void crun_session_free(crun_session *s)
{
    if (!s)
        return;
    exec_free(s->exec);
    if (s->seqs)
        for (int i = 0; i < s->model->graph->n_inputs; i++)
            free(s->seqs[i].items);
    free(s->seqs);
    free(s);
}

/* ---- inputs ---- */

static const GraphIO *input_io(const crun_session *s, int32_t index, const char *fn)
{
    if (!s || index < 0 || index >= s->model->graph->n_inputs) {
        error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: no input %d", fn, (int)index);
        return NULL;
    }
    return &s->model->graph->inputs[index];
}

/* Checks a tensor (or a sequence item) against the model's declared input. */
static crun_status check_tensor(const crun_session *s, const GraphIO *io, crun_dtype dtype, int32_t rank,
                                const int64_t *dims, const void *data)
{
    const Value *v = &s->model->graph->values[io->value];
    const char *src = s->model->source;
    if (rank < 0 || rank > CRUN_MAX_RANK || (rank && !dims))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': invalid rank %d", src, io->name, (int)rank);
    if (!dtype_is_valid((int)dtype))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': invalid dtype %d", src, io->name, (int)dtype);
    if (v->dtype && dtype != v->dtype)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' is %s, got %s", src, io->name,
                         dtype_name(v->dtype), dtype_name(dtype));
    bool shaped = v->kind == VALUE_TENSOR && v->rank >= 0;
    if (shaped && rank != v->rank)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' has rank %d, got rank %d", src, io->name, v->rank,
                         (int)rank);
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': dim %d is negative", src, io->name, k);
        if (shaped && v->sym[k] < 0 && v->dims[k] >= 0 && dims[k] != v->dims[k])
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': dim %d is %lld, the model expects %lld", src,
                             io->name, k, (long long)dims[k], (long long)v->dims[k]);
    }
    int64_t n = shape_numel(dims, rank);
    if (n < 0)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': shape is too large", src, io->name);
    if (!data && n > 0)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': data is NULL", src, io->name);
    return CRUN_OK;
}

static Tensor tensor_view(crun_dtype dtype, int32_t rank, const int64_t *dims, const void *data)
{
    Tensor t = {.dtype = dtype, .rank = rank, .data = (void *)data};
    if (rank > 0)
        memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    return t;
}

crun_status crun_session_set_input(crun_session *s, int32_t index, crun_dtype dtype, int32_t rank,
                                   const int64_t *dims, const void *data)
{
    const GraphIO *io = input_io(s, index, "crun_session_set_input");
    if (!io)
        return CRUN_ERR_INVALID_ARGUMENT;
    if (s->model->graph->values[io->value].kind == VALUE_SEQUENCE)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' is a sequence: use crun_session_set_input_sequence",
                         s->model->source, io->name);
    crun_status st = check_tensor(s, io, dtype, rank, dims, data);
    if (st != CRUN_OK)
        return st;
    Tensor t = tensor_view(dtype, rank, dims, data);
    return exec_bind(s->exec, index, &t);
}

crun_status crun_session_set_input_sequence(crun_session *s, int32_t index, int32_t n, const crun_tensor *items)
{
    const GraphIO *io = input_io(s, index, "crun_session_set_input_sequence");
    if (!io)
        return CRUN_ERR_INVALID_ARGUMENT;
    const Value *v = &s->model->graph->values[io->value];
    if (v->kind != VALUE_SEQUENCE)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' is not a sequence", s->model->source, io->name);
    if (n < 0 || (n && !items))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': bad item list", s->model->source, io->name);
    Sequence *seq = &s->seqs[index];
    Tensor *arr = realloc(seq->items, (size_t)(n ? n : 1) * sizeof *arr);
    if (!arr)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    seq->items = arr;
    seq->cap = seq->n = 0;
    for (int i = 0; i < n; i++) {
        const crun_tensor *it = &items[i];
        if (i && it->dtype != items[0].dtype)
            return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s': sequence items differ in type",
                             s->model->source, io->name);
        crun_status st = check_tensor(s, io, it->dtype, it->rank, it->dims, it->data);
        if (st != CRUN_OK)
            return st;
        arr[i] = tensor_view(it->dtype, it->rank, it->dims, it->data);
    }
    seq->n = n;
    seq->dtype = n ? items[0].dtype : v->dtype;
    Tensor t = {.dtype = seq->dtype, .kind = VALUE_SEQUENCE, .seq = seq};
    return exec_bind(s->exec, index, &t);
}

crun_status crun_session_set_input_none(crun_session *s, int32_t index)
{
    const GraphIO *io = input_io(s, index, "crun_session_set_input_none");
    if (!io)
        return CRUN_ERR_INVALID_ARGUMENT;
    const Value *v = &s->model->graph->values[io->value];
    if (!v->optional)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: input '%s' is not optional", s->model->source, io->name);
    Tensor t = {.dtype = v->dtype, .kind = v->kind, .none = true};
    return exec_bind(s->exec, index, &t);
}

crun_status crun_session_plan(crun_session *s)
{
    if (!s)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_plan: session is NULL");
    return exec_plan(s->exec);
}

crun_status crun_session_run(crun_session *s)
{
    if (!s)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_run: session is NULL");
    HeapRegion *prev = heap_enter(s->region);
    crun_status st = exec_run(s->exec);
    heap_enter(prev);
    return st;
}

size_t session_workspace_used(const crun_session *s) { return s && s->region ? s->region->high : 0; }

/* Opens image in r: model, session and arena. Failures are published. */
static crun_status static_open_in(HeapRegion *r, const void *image, size_t image_bytes, crun_model **model,
                                  crun_session **session)
{
    HeapRegion *prev = heap_enter(r);
    crun_status st = model_load_compiled_borrowed(image, image_bytes, model);
    if (st == CRUN_OK) {
        (*model)->region = r;
        crun_session_options o;
        crun_session_options_init(&o);
        o.threads = 1; /* no worker threads: their stacks would come from elsewhere */
        st = crun_session_create(*model, &o, session);
    }
    if (st == CRUN_OK)
        (*session)->region = r;
    heap_enter(prev);
    return st;
}

crun_status crun_static_open(const void *image, size_t image_bytes, void *buf, size_t buf_bytes, crun_model **model,
                             crun_session **session)
{
    if (!model || !session)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_static_open: model or session is NULL");
    *model = NULL;
    *session = NULL;
    if (!image || !buf)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_static_open: image or buffer is NULL");
    if (!crunfile_is(image, image_bytes))
        return error_set(CRUN_ERR_INVALID_MODEL, "crun_static_open: not a compiled model (crun compile makes one)");
    isa_best(); /* the CPU detection, once per process, before the region is in use */
    HeapRegion *r = heap_region_open(buf, buf_bytes);
    if (!r)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "crun_static_open: buffer of %zu bytes is too small (or %s)",
                         buf_bytes, "too many static models are open");
    crun_status st = static_open_in(r, image, image_bytes, model, session);
    if (st == CRUN_OK)
        return CRUN_OK;
    if (st == CRUN_ERR_OUT_OF_MEMORY) {
        CrunFileHeader h;
        Diag d = {0};
        bool known = crunfile_read_header(image, image_bytes, &h, &d) == CRUN_OK && h.workspace_bytes;
        st = known ? error_set(CRUN_ERR_OUT_OF_MEMORY, "crun_static_open: buffer of %zu bytes is too small: the "
                                                       "model needs %llu", buf_bytes,
                               (unsigned long long)h.workspace_bytes)
                   : error_set(CRUN_ERR_OUT_OF_MEMORY, "crun_static_open: buffer of %zu bytes is too small", buf_bytes);
    }
    crun_session_free(*session);
    if (*model)
        crun_model_free(*model); /* closes the region */
    else
        heap_region_close(r);
    *model = NULL;
    *session = NULL;
    return st;
}

/* ---- outputs and introspection ---- */

static void fill_tensor(crun_tensor *out, const char *name, const Tensor *t)
{
    memset(out, 0, sizeof *out);
    out->name = name;
    out->dtype = t->dtype;
    out->rank = t->rank;
    memcpy(out->dims, t->dims, (size_t)t->rank * sizeof *t->dims);
    out->data = t->data;
    out->size_bytes = tensor_bytes(t);
}

static const Tensor *output_value(const crun_session *s, int32_t index, const char *fn)
{
    if (!s || index < 0 || index >= s->model->graph->n_outputs) {
        error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: no output %d", fn, (int)index);
        return NULL;
    }
    const Tensor *t = exec_output(s->exec, index);
    if (!t)
        error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: the session has not run since its inputs changed", fn);
    return t;
}

crun_status crun_session_get_output(const crun_session *s, int32_t index, crun_tensor *out)
{
    const Tensor *t = out ? output_value(s, index, "crun_session_get_output") : NULL;
    if (!t)
        return CRUN_ERR_INVALID_ARGUMENT;
    if (t->none || t->kind != VALUE_TENSOR)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_get_output: output %d is %s", (int)index,
                         t->none ? "empty (an optional without value)" : "a sequence");
    fill_tensor(out, s->model->graph->outputs[index].name, t);
    return CRUN_OK;
}

crun_status crun_session_get_output_kind(const crun_session *s, int32_t index, crun_value_kind *kind, int32_t *count)
{
    const Tensor *t = kind && count ? output_value(s, index, "crun_session_get_output_kind") : NULL;
    if (!t)
        return CRUN_ERR_INVALID_ARGUMENT;
    *kind = t->none ? CRUN_VALUE_NONE : t->kind == VALUE_SEQUENCE ? CRUN_VALUE_SEQUENCE : CRUN_VALUE_TENSOR;
    *count = t->none ? 0 : t->kind == VALUE_SEQUENCE ? t->seq->n : 1;
    return CRUN_OK;
}

crun_status crun_session_get_output_item(const crun_session *s, int32_t index, int32_t item, crun_tensor *out)
{
    const Tensor *t = out ? output_value(s, index, "crun_session_get_output_item") : NULL;
    if (!t)
        return CRUN_ERR_INVALID_ARGUMENT;
    if (t->none || t->kind != VALUE_SEQUENCE || item < 0 || item >= t->seq->n)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_get_output_item: output %d has no item %d",
                         (int)index, (int)item);
    fill_tensor(out, s->model->graph->outputs[index].name, &t->seq->items[item]);
    return CRUN_OK;
}

crun_status crun_session_memory_info(const crun_session *s, crun_memory_info *out)
{
    const Plan *p = s ? exec_current_plan(s->exec) : NULL;
    if (!out || !p)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_memory_info: %s",
                         out && s ? "not planned yet (bind inputs and run)" : "NULL argument");
    out->arena_bytes = p->arena_bytes;
    out->lower_bound_bytes = p->lower_bound;
    out->naive_bytes = p->naive_bytes;
    out->weight_bytes = p->weight_bytes;
    return CRUN_OK;
}

int32_t crun_session_step_count(const crun_session *s)
{
    const Plan *p = s ? exec_current_plan(s->exec) : NULL;
    return p ? p->n_steps : 0;
}

int32_t crun_session_threads(const crun_session *s) { return s ? exec_threads(s->exec) : 0; }
int64_t crun_session_plan_count(const crun_session *s) { return s ? exec_plan_count(s->exec) : 0; }

crun_status crun_session_step_info(const crun_session *s, int32_t index, crun_step_info *out)
{
    if (!s || !out || index < 0 || index >= crun_session_step_count(s))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_step_info: no step %d", (int)index);
    const Plan *p = exec_current_plan(s->exec);
    const PlanStep *st = &p->steps[index];
    const Node *n = &s->model->graph->nodes[st->node];
    memset(out, 0, sizeof *out);
    out->node_name = n->name;
    out->op_type = n->op_type;
    out->fused = st->region_note ? st->region_note : n->fused;
    out->kernel = st->kv ? st->kv->name : "dynamic";
    out->isa = st->kv ? isa_name(st->kv->isa) : "-";
    out->arena_offset = -1;
    out->rank = -1;
    StepIo io = step_io(p, st);
    int v = io.n_out > 0 ? io.out[0] : -1;
    if (v >= 0) {
        const PlanValue *pv = &p->vals[v];
        const Tensor *t = &exec_values(s->exec)[v];
        out->precision = t->dtype;
        /* The kernels of that ISA are the half-precision ones (float in, float out). */
        if (st->kv && st->kv->isa == ISA_NEONFP16 && t->dtype == CRUN_DTYPE_FLOAT)
            out->precision = CRUN_DTYPE_FLOAT16;
        /* A dynamic step's shape is known once it ran. */
        if (!st->dynamic || exec_output(s->exec, 0)) {
            out->rank = t->kind == VALUE_TENSOR && !t->none ? t->rank : -1;
            memcpy(out->dims, t->dims, sizeof out->dims);
        }
        if (pv->store == STORE_ARENA)
            out->arena_offset = (int64_t)pv->offset;
        out->size_bytes = (int64_t)pv->bytes;
        out->live_first = pv->first;
        out->live_last = pv->last;
    }
    for (int k = 0; k < io.n_in; k++) {
        const Tensor *t = io.in[k] < 0 ? NULL : &exec_values(s->exec)[io.in[k]];
        if (t && t->kind == VALUE_TENSOR && !t->none)
            out->bytes_in += (int64_t)tensor_bytes(t);
    }
    out->flops = st->flops;
    return CRUN_OK;
}

crun_status crun_session_set_profiling(crun_session *s, int32_t on)
{
    if (!s)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_set_profiling: session is NULL");
    return exec_set_profiling(s->exec, on != 0);
}

crun_status crun_session_step_profile(const crun_session *s, int32_t index, crun_step_profile *out)
{
    const ExecStepTime *t = s ? exec_step_times(s->exec) : NULL;
    if (!t || !out || index < 0 || index >= crun_session_step_count(s))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_session_step_profile: %s",
                         t ? "no such step" : "profiling is off (crun_session_set_profiling)");
    *out = (crun_step_profile){t[index].runs, t[index].total_ms, t[index].last_start_ms, t[index].last_ms};
    return CRUN_OK;
}
