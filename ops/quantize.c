/* quantize.c - conversions between real and 8-bit values: QuantizeLinear,
 * DequantizeLinear (per tensor, or per channel along `axis` from opset 13) and
 * DynamicQuantizeLinear. The arithmetic is quant/quant.h's. */
#include "quant/quant.h"
#include "ops/registry.h"

typedef struct AxisParams {
    int64_t axis;
} AxisParams;

static crun_status parse_axis(Node *n, Diag *d)
{
    AxisParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    /* Opset 10 has no axis: its scales are scalars and the value is never read. */
    return attr_get_int(n, "axis", 1, &p->axis, d);
}

static bool is_8bit(crun_dtype t) { return t == CRUN_DTYPE_UINT8 || t == CRUN_DTYPE_INT8; }

static QuantRange range_of(crun_dtype t) { return t == CRUN_DTYPE_INT8 ? QUANT_I8 : QUANT_U8; }

/* How scale/zero-point index the data: one value, or one per index of dims[axis]. */
typedef struct QuantAxis {
    bool per_axis;
    int64_t n_axis, inner; /* elements per axis index run */
} QuantAxis;

/* Checks the scale (input 1) and zero point (input 2) against x and fills qa. */
static crun_status check_qparams(InferCtx *c, crun_dtype zp_want, QuantAxis *qa)
{
    const Tensor *x = c->in[0], *s = c->in[1], *z = c->n_in > 2 ? c->in[2] : NULL;
    const AxisParams *p = c->params;
    NODE_CHECK(c, s->dtype == CRUN_DTYPE_FLOAT, "the scale must be float (got %s)", dtype_name(s->dtype));
    qa->per_axis = s->rank == 1 && s->dims[0] != 1;
    qa->n_axis = 1;
    qa->inner = 1;
    if (qa->per_axis) {
        NODE_CHECK(c, c->node->opset >= 13, "a per-axis scale needs opset 13 (the model has opset %d)",
                   c->node->opset);
        int64_t axis = p->axis < 0 ? p->axis + x->rank : p->axis;
        NODE_CHECK(c, axis >= 0 && axis < x->rank, "axis %lld is out of range for rank %d", (long long)p->axis,
                   x->rank);
        NODE_CHECK(c, s->dims[0] == x->dims[axis], "the scale has %lld values but axis %lld has %lld",
                   (long long)s->dims[0], (long long)axis, (long long)x->dims[axis]);
        qa->n_axis = s->dims[0];
        for (int i = (int)axis + 1; i < x->rank; i++)
            qa->inner *= x->dims[i];
    } else {
        NODE_CHECK(c, s->rank <= 1 && tensor_numel(s) == 1, "the scale must be a scalar or 1-D");
    }
    if (z) {
        NODE_CHECK(c, z->dtype == zp_want || (zp_want == CRUN_DTYPE_UNDEFINED && is_8bit(z->dtype)),
                   "the zero point is %s, expected %s", dtype_name(z->dtype),
                   zp_want ? dtype_name(zp_want) : "uint8 or int8");
        NODE_CHECK(c, tensor_numel(z) == tensor_numel(s) && z->rank <= 1,
                   "the zero point has %lld values but the scale has %lld", (long long)tensor_numel(z),
                   (long long)tensor_numel(s));
    }
    return CRUN_OK;
}

/* The layout check_qparams found, recomputed from shapes at run time (infer checked them). */
static QuantAxis axis_of(const KernelCtx *k)
{
    const Tensor *x = k->in[0], *s = k->in[1];
    const AxisParams *p = k->params;
    QuantAxis qa = {s->rank == 1 && s->dims[0] != 1, 1, 1};
    if (qa.per_axis) {
        int64_t axis = p->axis < 0 ? p->axis + x->rank : p->axis;
        qa.n_axis = s->dims[0];
        for (int i = (int)axis + 1; i < x->rank; i++)
            qa.inner *= x->dims[i];
    }
    return qa;
}

static int32_t zp_at(const Tensor *z, int64_t i) { return z ? (int32_t)tensor_get_int(z, i) : 0; }

/* ================= QuantizeLinear ================= */

static crun_status quantize_infer(InferCtx *c)
{
    const Tensor *x = c->in[0], *z = c->n_in > 2 ? c->in[2] : NULL;
    NODE_CHECK(c, dtype_is_float(x->dtype) || x->dtype == CRUN_DTYPE_INT32, "x is %s, expected float or int32",
               dtype_name(x->dtype));
    QuantAxis qa;
    crun_status st = check_qparams(c, CRUN_DTYPE_UNDEFINED, &qa);
    if (st != CRUN_OK)
        return st;
    out_set(c->out[0], z ? z->dtype : CRUN_DTYPE_UINT8, x->rank, x->dims);
    return CRUN_OK;
}

static crun_status quantize_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *s = k->in[1], *z = k->n_in > 2 ? k->in[2] : NULL;
    Tensor *y = k->out[0];
    QuantAxis qa = axis_of(k);
    QuantRange r = range_of(y->dtype);
    const float *scale = s->data;
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n;) {
        int64_t a = (i / qa.inner) % qa.n_axis, end = i + qa.inner;
        float sc = scale[a];
        int32_t zp = zp_at(z, a);
        if (!qa.per_axis)
            end = n;
        for (; i < end; i++) {
            float v = x->dtype == CRUN_DTYPE_FLOAT ? ((const float *)x->data)[i] : (float)tensor_get_double(x, i);
            tensor_set_int(y, i, quant_quantize(v, sc, zp, r));
        }
    }
    return CRUN_OK;
}

/* The common case, float32 to 8 bits with one scale: blocks of 16 (a trip count compilers
 * vectorize) of the same quant_quantize the other paths call. */
#define QUANTIZE_LOOP(name, T, R)                                                              \
    static void name(T *restrict y, const float *restrict x, int64_t n, float sc, int32_t zp) \
    {                                                                                          \
        int64_t i = 0;                                                                         \
        for (; i + 16 <= n; i += 16)                                                           \
            for (int t = 0; t < 16; t++)                                                       \
                y[i + t] = (T)quant_quantize(x[i + t], sc, zp, R);                             \
        for (; i < n; i++)                                                                     \
            y[i] = (T)quant_quantize(x[i], sc, zp, R);                                         \
    }
QUANTIZE_LOOP(quantize_u8, uint8_t, QUANT_U8)
QUANTIZE_LOOP(quantize_s8, int8_t, QUANT_I8)

static bool quantize_f32_applies(const PrepCtx *c, const void *kdata)
{
    (void)kdata;
    return c->in[0]->dtype == CRUN_DTYPE_FLOAT && tensor_numel(c->in[1]) == 1;
}

static crun_status quantize_f32_run(KernelCtx *k)
{
    const Tensor *z = k->n_in > 2 ? k->in[2] : NULL;
    const float *x = k->in[0]->data;
    float sc = *(const float *)k->in[1]->data;
    int32_t zp = zp_at(z, 0);
    int64_t n = tensor_numel(k->in[0]);
    if (k->out[0]->dtype == CRUN_DTYPE_INT8)
        quantize_s8(k->out[0]->data, x, n, sc, zp);
    else
        quantize_u8(k->out[0]->data, x, n, sc, zp);
    return CRUN_OK;
}

static const KernelVariant quantize_kernels[] = {
    {"quantize_f32", ISA_SCALAR, quantize_f32_applies, NULL, quantize_f32_run, NULL},
    {"quantize_ref", ISA_SCALAR, NULL, NULL, quantize_run, NULL},
    {0},
};

const OpDesc op_QuantizeLinear = {"", "QuantizeLinear", 2, 3, 1, 1, 0, parse_axis, quantize_infer, NULL,
                                  quantize_kernels};

/* ================= DequantizeLinear ================= */

static crun_status dequantize_infer(InferCtx *c)
{
    const Tensor *x = c->in[0], *z = c->n_in > 2 ? c->in[2] : NULL;
    NODE_CHECK(c, is_8bit(x->dtype) || x->dtype == CRUN_DTYPE_INT32, "x is %s, expected uint8, int8 or int32",
               dtype_name(x->dtype));
    QuantAxis qa;
    crun_status st = check_qparams(c, x->dtype, &qa);
    if (st != CRUN_OK)
        return st;
    /* int32 values (biases) are dequantized with a zero point of 0 by definition. */
    if (x->dtype == CRUN_DTYPE_INT32 && z && z->data)
        for (int64_t i = 0; i < tensor_numel(z); i++)
            NODE_CHECK(c, tensor_get_int(z, i) == 0, "an int32 x needs a zero point of 0");
    out_set(c->out[0], CRUN_DTYPE_FLOAT, x->rank, x->dims);
    return CRUN_OK;
}

#define DEQUANTIZE_LOOP(name, T)                                                               \
    static void name(float *restrict y, const T *restrict q, int64_t n, float sc, int32_t zp) \
    {                                                                                          \
        int64_t i = 0;                                                                         \
        for (; i + 16 <= n; i += 16)                                                           \
            for (int t = 0; t < 16; t++)                                                       \
                y[i + t] = quant_dequantize(q[i + t], sc, zp);                                 \
        for (; i < n; i++)                                                                     \
            y[i] = quant_dequantize(q[i], sc, zp);                                             \
    }
DEQUANTIZE_LOOP(dequantize_u8, uint8_t)
DEQUANTIZE_LOOP(dequantize_s8, int8_t)

static crun_status dequantize_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *s = k->in[1], *z = k->n_in > 2 ? k->in[2] : NULL;
    float *y = k->out[0]->data;
    QuantAxis qa = axis_of(k);
    const float *scale = s->data;
    int64_t n = tensor_numel(x);
    bool int32 = x->dtype == CRUN_DTYPE_INT32;
    for (int64_t i = 0; i < n;) {
        int64_t a = (i / qa.inner) % qa.n_axis, end = qa.per_axis ? i + qa.inner : n;
        float sc = scale[a];
        int32_t zp = int32 ? 0 : zp_at(z, a);
        if (x->dtype == CRUN_DTYPE_UINT8)
            dequantize_u8(y + i, (const uint8_t *)x->data + i, end - i, sc, zp);
        else if (x->dtype == CRUN_DTYPE_INT8)
            dequantize_s8(y + i, (const int8_t *)x->data + i, end - i, sc, zp);
        if (x->dtype != CRUN_DTYPE_INT32)
            i = end;
        else
            for (const int32_t *q = x->data; i < end; i++)
                y[i] = (float)q[i] * sc;
    }
    return CRUN_OK;
}

static const KernelVariant dequantize_kernels[] = {
    {"dequantize_ref", ISA_SCALAR, NULL, NULL, dequantize_run, NULL},
    {0},
};

const OpDesc op_DequantizeLinear = {"", "DequantizeLinear", 2, 3, 1, 1, 0, parse_axis, dequantize_infer, NULL,
                                    dequantize_kernels};

/* ================= DynamicQuantizeLinear ================= */

static crun_status dynquant_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->dtype == CRUN_DTYPE_FLOAT, "x is %s, expected float", dtype_name(x->dtype));
    out_set(c->out[0], CRUN_DTYPE_UINT8, x->rank, x->dims);
    if (c->n_out > 1 && c->out[1])
        out_set(c->out[1], CRUN_DTYPE_FLOAT, 0, NULL);
    if (c->n_out > 2 && c->out[2])
        out_set(c->out[2], CRUN_DTYPE_UINT8, 0, NULL);
    return CRUN_OK;
}

static crun_status dynquant_run(KernelCtx *k)
{
    const float *x = k->in[0]->data;
    uint8_t *y = k->out[0]->data;
    int64_t n = tensor_numel(k->in[0]);
    float lo = 0.0f, hi = 0.0f; /* the range always holds 0 */
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float scale;
    int32_t zp;
    quant_params_from_range(lo, hi, QUANT_U8, &scale, &zp);
    for (int64_t i = 0; i < n; i++)
        y[i] = (uint8_t)quant_quantize(x[i], scale, zp, QUANT_U8);
    if (k->n_out > 1 && k->out[1])
        *(float *)k->out[1]->data = scale;
    if (k->n_out > 2 && k->out[2])
        *(uint8_t *)k->out[2]->data = (uint8_t)zp;
    return CRUN_OK;
}

static const KernelVariant dynquant_kernels[] = {
    {"dynamic_quantize_ref", ISA_SCALAR, NULL, NULL, dynquant_run, NULL},
    {0},
};

const OpDesc op_DynamicQuantizeLinear = {"", "DynamicQuantizeLinear", 1, 1, 1, 3, 0, NULL, dynquant_infer, NULL,
                                         dynquant_kernels};
