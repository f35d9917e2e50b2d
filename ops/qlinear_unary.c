/* qlinear_unary.c - the com.microsoft 8-bit ops with one tensor operand that quantization
 * tools emit and the QDQ pass makes of DequantizeLinear -> op -> QuantizeLinear:
 * QLinearSigmoid, QLinearLeakyRelu and QLinearGlobalAveragePool.
 *
 * Inputs: X, x_scale, x_zero_point, y_scale, y_zero_point (zero points optional, 0 when
 * absent); Y has X's type. Sigmoid and LeakyRelu map each of the 256 codes through a table:
 * dequantize, the float function, quantize (round half to even, saturate), computed once
 * per run. The average pool sums the codes minus zero point in integers and requantizes
 * the sum with x_scale / (y_scale * count). */
#include <math.h>

#include "ops/qlinear.h"
#include "runtime/threadpool.h"

typedef struct QUnaryParams {
    float alpha;          /* LeakyRelu's slope */
    int64_t channels_last; /* GlobalAveragePool: X is NHWC */
} QUnaryParams;

static crun_status parse_leaky(Node *n, Diag *d)
{
    QUnaryParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_float(n, "alpha", 0.01f, &p->alpha, d) : d->status;
}

static crun_status parse_gap(Node *n, Diag *d)
{
    QUnaryParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_int(n, "channels_last", 0, &p->channels_last, d) : d->status;
}

/* Checks X and its four quantization parameters (one value each, zero points of X's
 * type) and gives Y X's type and the shape dims. */
static crun_status qunary_check(InferCtx *c, int rank, const int64_t *dims)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_8bit(x->dtype), "X must be uint8 or int8 (got %s)", dtype_name(x->dtype));
    for (int i = 1; i < 5; i++) {
        const Tensor *t = c->n_in > i ? c->in[i] : NULL;
        bool scale = i == 1 || i == 3;
        NODE_CHECK(c, t || !scale, "%s is required", i == 1 ? "x_scale" : "y_scale");
        if (!t)
            continue;
        NODE_CHECK(c, tensor_numel(t) == 1, "input %d must hold one value (per-tensor quantization)", i);
        NODE_CHECK(c, scale ? t->dtype == CRUN_DTYPE_FLOAT : t->dtype == x->dtype, "input %d must be %s", i,
                   scale ? "float" : dtype_name(x->dtype));
    }
    out_set(c->out[0], x->dtype, rank, dims);
    return CRUN_OK;
}

static crun_status qelementwise_infer(InferCtx *c) { return qunary_check(c, c->in[0]->rank, c->in[0]->dims); }

/* The quantization of X and Y. */
typedef struct QUnaryArgs {
    float sx, sy;
    int32_t zx, zy;
    QuantRange r;
    bool is_signed;
} QUnaryArgs;

static QUnaryArgs qunary_args(const KernelCtx *k)
{
    const Tensor *zx = k->n_in > 2 ? k->in[2] : NULL, *zy = k->n_in > 4 ? k->in[4] : NULL;
    QUnaryArgs q = {.sx = scale_at(k->in[1], 0), .sy = scale_at(k->in[3], 0), .zx = zp_at(zx, 0), .zy = zp_at(zy, 0),
                    .is_signed = k->in[0]->dtype == CRUN_DTYPE_INT8};
    q.r = q.is_signed ? QUANT_I8 : QUANT_U8;
    return q;
}

/* ---- Sigmoid and LeakyRelu through a table of the 256 codes ---- */

typedef enum QFn { QFN_SIGMOID, QFN_LEAKY } QFn;

static float qfn_apply(QFn fn, float v, float alpha)
{
    return fn == QFN_SIGMOID ? 1.0f / (1.0f + expf(-v)) : v >= 0.0f ? v : alpha * v;
}

typedef struct LutJob {
    const uint8_t *x;
    uint8_t *y;
    const uint8_t *table; /* indexed by the code's byte */
    int64_t n;
} LutJob;

#define LUT_TASK 16384

static void lut_task(void *ctx, int64_t t, int thread)
{
    const LutJob *j = ctx;
    int64_t i0 = t * LUT_TASK, i1 = CRUN_MIN(j->n, i0 + LUT_TASK);
    for (int64_t i = i0; i < i1; i++)
        j->y[i] = j->table[j->x[i]];
}

static crun_status qlut_run(KernelCtx *k)
{
    const QUnaryParams *p = k->params;
    QFn fn = *(const QFn *)k->kdata;
    QUnaryArgs q = qunary_args(k);
    uint8_t table[256];
    for (int b = 0; b < 256; b++) {
        int32_t code = q.is_signed ? (int32_t)(int8_t)b : b;
        float v = qfn_apply(fn, quant_dequantize(code, q.sx, q.zx), p ? p->alpha : 0.0f);
        table[b] = (uint8_t)quant_quantize(v, q.sy, q.zy, q.r);
    }
    LutJob j = {k->in[0]->data, k->out[0]->data, table, tensor_numel(k->in[0])};
    pool_for(k->pool, (j.n + LUT_TASK - 1) / LUT_TASK, lut_task, &j);
    return CRUN_OK;
}

static const QFn fn_sigmoid = QFN_SIGMOID, fn_leaky = QFN_LEAKY;
static const KernelVariant qsigmoid_kernels[] = {{"qlinear_sigmoid_lut", ISA_SCALAR, NULL, NULL, qlut_run, &fn_sigmoid},
                                                 {0}};
static const KernelVariant qleaky_kernels[] = {{"qlinear_leakyrelu_lut", ISA_SCALAR, NULL, NULL, qlut_run, &fn_leaky},
                                               {0}};

const OpDesc op_QLinearSigmoid = {"com.microsoft", "QLinearSigmoid", 4, 5, 1, 1, 0, NULL, qelementwise_infer, NULL,
                                  qsigmoid_kernels};
const OpDesc op_QLinearLeakyRelu = {"com.microsoft", "QLinearLeakyRelu", 4, 5, 1, 1, 0, parse_leaky,
                                    qelementwise_infer, NULL, qleaky_kernels};

/* ---- GlobalAveragePool ---- */

static crun_status qgap_infer(InferCtx *c)
{
    const QUnaryParams *p = c->params;
    const Tensor *x = c->in[0];
    bool cl = p && p->channels_last;
    NODE_CHECK(c, x->rank >= 3, "X must be N x C x spatial... (got rank %d)", x->rank);
    int64_t dims[CRUN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) /* the spatial dims become 1 */
        dims[i] = (cl ? i == 0 || i == x->rank - 1 : i < 2) ? x->dims[i] : 1;
    return qunary_check(c, x->rank, dims);
}

typedef struct GapJob {
    const KernelCtx *k;
    QUnaryArgs q;
    int64_t C, spatial;
    bool channels_last;
    float mult;
} GapJob;

/* Task t: the outputs of sample t. */
static void gap_task(void *ctx, int64_t t, int thread)
{
    const GapJob *j = ctx;
    const uint8_t *xu = j->k->in[0]->data;
    const int8_t *xs = j->k->in[0]->data;
    uint8_t *y = j->k->out[0]->data;
    for (int64_t c = 0; c < j->C; c++) {
        int64_t acc = 0, base = t * j->C * j->spatial;
        for (int64_t i = 0; i < j->spatial; i++) {
            int64_t at = base + (j->channels_last ? i * j->C + c : c * j->spatial + i);
            acc += j->q.is_signed ? xs[at] : xu[at];
        }
        acc -= (int64_t)j->q.zx * j->spatial;
        y[t * j->C + c] = (uint8_t)quant_round_sat((float)acc * j->mult, j->q.zy, j->q.r);
    }
}

static crun_status qgap_run(KernelCtx *k)
{
    const QUnaryParams *p = k->params;
    const Tensor *x = k->in[0];
    bool cl = p && p->channels_last != 0;
    GapJob j = {k, qunary_args(k), x->dims[cl ? x->rank - 1 : 1], 1, cl, 0.0f};
    for (int i = cl ? 1 : 2; i < (cl ? x->rank - 1 : x->rank); i++)
        j.spatial *= x->dims[i];
    /* the mean's requantization: x_scale / (y_scale * count), 0 when not finite */
    float mult = j.q.sx / (j.q.sy * (float)(j.spatial ? j.spatial : 1));
    j.mult = isfinite(mult) ? mult : 0.0f;
    pool_for(k->pool, x->dims[0], gap_task, &j);
    return CRUN_OK;
}

static const KernelVariant qgap_kernels[] = {{"qlinear_gap_ref", ISA_SCALAR, NULL, NULL, qgap_run, NULL}, {0}};
const OpDesc op_QLinearGlobalAveragePool = {"com.microsoft", "QLinearGlobalAveragePool", 4, 5, 1, 1, 0, parse_gap,
                                            qgap_infer, NULL, qgap_kernels};
