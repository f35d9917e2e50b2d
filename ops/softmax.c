/* softmax.c - Softmax, LogSoftmax and Hardmax.
 *
 * Before opset 13 the input is flattened at axis into [outer, rest] and normalised over
 * rest; from opset 13 the op normalises along the single axis. */
#include <math.h>

#include "ops/registry.h"
#include "platforms/softmax.h"
#include "runtime/threadpool.h"

typedef struct SoftmaxParams {
    int64_t axis;
} SoftmaxParams;

static crun_status parse_softmax(Node *n, Diag *d)
{
    SoftmaxParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_int(n, "axis", n->opset >= 13 ? -1 : 1, &p->axis, d) : d->status;
}

static crun_status softmax_infer(InferCtx *c)
{
    const SoftmaxParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    int r = CRUN_MAX(x->rank, 1);
    NODE_CHECK(c, p->axis >= -r && p->axis < r + (c->node->opset < 13), "axis %lld is out of range for rank %d",
               (long long)p->axis, x->rank);
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

static int64_t softmax_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return 4 * tensor_numel(out[0]);
}

typedef struct SoftmaxJob {
    const Tensor *x;
    Tensor *y;
    int64_t len, inner; /* normalised length and the stride between its elements */
    bool log;
    int64_t rows, per_task; /* rows, and rows per task (short rows are grouped) */
    void (*row)(const struct SoftmaxJob *j, int64_t t);
} SoftmaxJob;

static void rows_task(void *ctx, int64_t t, int thread)
{
    const SoftmaxJob *j = ctx;
    int64_t end = CRUN_MIN(j->rows, (t + 1) * j->per_task);
    for (int64_t r = t * j->per_task; r < end; r++)
        j->row(j, r);
}

/* Runs j->row over every row, about 4096 elements per task. */
static void rows_run(struct ThreadPool *pool, SoftmaxJob *j, int64_t n)
{
    j->rows = n / j->len;
    j->per_task = j->len >= 4096 ? 1 : 4096 / j->len;
    pool_for(pool, (j->rows + j->per_task - 1) / j->per_task, rows_task, j);
}

/* The normalised length and stride of x for this node's opset and axis. */
static void softmax_split(const Node *n, const SoftmaxParams *p, const Tensor *x, int64_t *len, int64_t *inner)
{
    /* Clamped: a rank-0 input accepts axis -1 and 0 (and 1 before opset 13). */
    int axis = (int)CRUN_MAX(0, CRUN_MIN(p->axis < 0 ? p->axis + x->rank : p->axis, x->rank));
    *len = *inner = 1;
    if (n->opset < 13) {
        *len = shape_numel(x->dims + axis, x->rank - axis);
    } else if (x->rank > 0) {
        *len = x->dims[axis];
        *inner = shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    }
}

static void softmax_row(const SoftmaxJob *j, int64_t t)
{
    int64_t base = (t / j->inner) * j->len * j->inner + t % j->inner;
    if (j->x->dtype == CRUN_DTYPE_FLOAT) {
        const float *x = (const float *)j->x->data + base;
        float *y = (float *)j->y->data + base;
        float mx = -INFINITY, sum = 0.0f;
        for (int64_t i = 0; i < j->len; i++)
            mx = x[i * j->inner] > mx ? x[i * j->inner] : mx;
        for (int64_t i = 0; i < j->len; i++) {
            float e = expf(x[i * j->inner] - mx);
            sum += e;
            if (!j->log)
                y[i * j->inner] = e;
        }
        float ls = logf(sum), inv = 1.0f / sum;
        for (int64_t i = 0; i < j->len; i++)
            y[i * j->inner] = j->log ? x[i * j->inner] - mx - ls : y[i * j->inner] * inv;
        return;
    }
    double mx = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < j->len; i++) {
        double v = tensor_get_double(j->x, base + i * j->inner);
        mx = v > mx ? v : mx;
    }
    for (int64_t i = 0; i < j->len; i++)
        sum += exp(tensor_get_double(j->x, base + i * j->inner) - mx);
    for (int64_t i = 0; i < j->len; i++) {
        double v = tensor_get_double(j->x, base + i * j->inner) - mx;
        tensor_set_double(j->y, base + i * j->inner, j->log ? v - log(sum) : exp(v) / sum);
    }
}

static crun_status softmax_run_any(KernelCtx *k, bool log)
{
    const SoftmaxParams *p = k->params;
    const Tensor *x = k->in[0];
    int64_t n = tensor_numel(x);
    if (n == 0)
        return CRUN_OK;
    SoftmaxJob j = {.x = x, .y = k->out[0], .log = log, .row = softmax_row};
    softmax_split(k->node, p, x, &j.len, &j.inner);
    rows_run(k->pool, &j, n);
    return CRUN_OK;
}

static crun_status softmax_run(KernelCtx *k) { return softmax_run_any(k, false); }
static crun_status logsoftmax_run(KernelCtx *k) { return softmax_run_any(k, true); }

/* ---- float32 rows that are contiguous (the last axis) through the vector kernels ---- */

KV_SIMD_ONLY static bool softmax_simd_applies(const PrepCtx *c, const void *kdata)
{
    int64_t len, inner;
    softmax_split(c->node, c->params, c->in[0], &len, &inner);
    return c->in[0]->dtype == CRUN_DTYPE_FLOAT && inner == 1;
}

typedef struct SimdRowJob {
    SoftmaxRowFn fn;
    const float *x;
    float *y;
    int64_t len, rows, per_task;
    bool log;
} SimdRowJob;

static void simd_rows_task(void *ctx, int64_t t, int thread)
{
    const SimdRowJob *j = ctx;
    int64_t end = CRUN_MIN(j->rows, (t + 1) * j->per_task);
    for (int64_t r = t * j->per_task; r < end; r++)
        j->fn(j->x + r * j->len, j->y + r * j->len, j->len, j->log);
}

static crun_status softmax_simd_any(KernelCtx *k, bool log)
{
    int64_t n = tensor_numel(k->in[0]), inner;
    if (n == 0)
        return CRUN_OK;
    SimdRowJob j = {*(const SoftmaxRowFn *)k->kdata, k->in[0]->data, k->out[0]->data, 0, 0, 0, log};
    softmax_split(k->node, k->params, k->in[0], &j.len, &inner);
    j.rows = n / j.len;
    j.per_task = j.len >= 4096 ? 1 : 4096 / j.len;
    pool_for(k->pool, (j.rows + j.per_task - 1) / j.per_task, simd_rows_task, &j);
    return CRUN_OK;
}

KV_SIMD_ONLY static crun_status softmax_simd_run(KernelCtx *k) { return softmax_simd_any(k, false); }
KV_SIMD_ONLY static crun_status logsoftmax_simd_run(KernelCtx *k) { return softmax_simd_any(k, true); }

static const KernelVariant softmax_kernels[] = {KV_SIMD("softmax", softmax_simd_applies, NULL, softmax_simd_run,
                                                        softmax_row)
                                                {"softmax_ref", ISA_SCALAR, NULL, NULL, softmax_run, NULL},
                                                {0}};
static const KernelVariant logsoftmax_kernels[] = {KV_SIMD("logsoftmax", softmax_simd_applies, NULL,
                                                           logsoftmax_simd_run, softmax_row)
                                                   {"logsoftmax_ref", ISA_SCALAR, NULL, NULL, logsoftmax_run, NULL},
                                                   {0}};
const OpDesc op_Softmax = {"", "Softmax", 1, 1, 1, 1, 0, parse_softmax, softmax_infer, softmax_flops,
                           softmax_kernels};
const OpDesc op_LogSoftmax = {"", "LogSoftmax", 1, 1, 1, 1, 0, parse_softmax, softmax_infer, softmax_flops,
                              logsoftmax_kernels};

/* ---- Hardmax: 1 at the first maximum of each row, 0 elsewhere (a NaN counts as the
 * maximum, as numpy's argmax has it) ---- */

static void hardmax_row(const SoftmaxJob *j, int64_t t)
{
    int64_t base = (t / j->inner) * j->len * j->inner + t % j->inner, best = 0;
    if (j->x->dtype == CRUN_DTYPE_FLOAT) {
        const float *x = (const float *)j->x->data + base;
        float *y = (float *)j->y->data + base;
        for (int64_t i = 1; i < j->len && !isnan(x[best * j->inner]); i++)
            if (x[i * j->inner] > x[best * j->inner] || isnan(x[i * j->inner]))
                best = i;
        for (int64_t i = 0; i < j->len; i++)
            y[i * j->inner] = i == best ? 1.0f : 0.0f;
        return;
    }
    double bv = tensor_get_double(j->x, base);
    for (int64_t i = 1; i < j->len && !isnan(bv); i++) {
        double v = tensor_get_double(j->x, base + i * j->inner);
        if (v > bv || isnan(v)) {
            bv = v;
            best = i;
        }
    }
    for (int64_t i = 0; i < j->len; i++)
        tensor_set_double(j->y, base + i * j->inner, i == best ? 1.0 : 0.0);
}

static crun_status hardmax_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    int64_t n = tensor_numel(x);
    SoftmaxJob j = {.x = x, .y = k->out[0], .row = hardmax_row};
    softmax_split(k->node, k->params, x, &j.len, &j.inner);
    if (n == 0)
        return CRUN_OK;
    rows_run(k->pool, &j, n);
    return CRUN_OK;
}

static const KernelVariant hardmax_kernels[] = {{"hardmax_ref", ISA_SCALAR, NULL, NULL, hardmax_run, NULL}, {0}};
const OpDesc op_Hardmax = {"", "Hardmax", 1, 1, 1, 1, 0, parse_softmax, softmax_infer, softmax_flops, hardmax_kernels};
