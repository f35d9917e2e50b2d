/* qlinear_ms.c - the com.microsoft 8-bit elementwise ops that quantization tools emit
 * (and that the QDQ pass makes of DequantizeLinear -> Add/Mul -> QuantizeLinear):
 * QLinearAdd and QLinearMul, with numpy broadcasting.
 *
 * Each output is what the float chain it replaces computes, operation for operation:
 * dequantize both operands ((q - z) * s), add or multiply, apply a fused Relu/Clip, then
 * quantize (round half even of v / s_y, + z_y, saturate), so fusing never changes a
 * result. */
#include "ops/activation.h"
#include "ops/broadcast.h"
#include "ops/qlinear.h"

typedef struct QEltArgs {
    float sa, sb, sy, lo, hi;
    int32_t za, zb, zy;
    QuantRange r;
    bool is_signed, mul;
} QEltArgs;

static inline int32_t q8(const void *p, int64_t i, bool s) { return s ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i]; }

static inline float clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v; /* (NaN stays NaN) */
    return v > hi ? hi : v;
}

/* The contiguous case, written so compilers vectorize it (parameters in locals, blocks of
 * 16, no branches; -O3 on these loops alone, as this file otherwise builds for size), with
 * the same operations in the same order as the general loop:
 * dequantize, add or multiply, the activation's clamp, divide by the output scale (a zero
 * scale gives 0), NaN to 0, clamp to the range, round, add the zero point. */
#if defined(__GNUC__) && !defined(__clang__) && defined(NDEBUG)
#define QELT_O3 __attribute__((optimize("O3")))
#else
#define QELT_O3
#endif
#define QELT_CONTIGUOUS(name, T, OP)                                                              \
    QELT_O3 static inline T name##_one(T av, T bv, const QEltArgs *q)     \
    {                                                                                             \
        float v = clampf(((float)((int32_t)av - q->za) * q->sa) OP((float)((int32_t)bv - q->zb) * q->sb), q->lo, \
                         q->hi);                                                                  \
        v = q->sy != 0.0f ? v / q->sy : 0.0f;                                                     \
        v = clampf(v == v ? v : 0.0f, (float)(q->r.lo - q->zy), (float)(q->r.hi - q->zy));        \
        return (T)((int32_t)quant_rint_small(v) + q->zy);                                         \
    }                                                                                             \
    QELT_O3 static void name(T *restrict y, const T *restrict a, const T *restrict b, int64_t n,            \
                             const QEltArgs *qp)                                                 \
    {                                                                                             \
        const QEltArgs q = *qp;                                                                   \
        int64_t i = 0;                                                                            \
        for (; i + 16 <= n; i += 16)                                                              \
            for (int t = 0; t < 16; t++)                                                          \
                y[i + t] = name##_one(a[i + t], b[i + t], &q);                                    \
        for (; i < n; i++)                                                                        \
            y[i] = name##_one(a[i], b[i], &q);                                                    \
    }
QELT_CONTIGUOUS(qadd_u8, uint8_t, +)
QELT_CONTIGUOUS(qadd_s8, int8_t, +)
QELT_CONTIGUOUS(qmul_u8, uint8_t, *)
QELT_CONTIGUOUS(qmul_s8, int8_t, *)

static void qelt_loop(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg)
{
    const QEltArgs *q = arg;
    if (s[0] == 1 && s[1] == 1) {
        if (q->is_signed)
            (q->mul ? qmul_s8 : qadd_s8)(out, in[0], in[1], n, q);
        else
            (q->mul ? qmul_u8 : qadd_u8)(out, in[0], in[1], n, q);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float a = quant_dequantize(q8(in[0], i * s[0], q->is_signed), q->sa, q->za);
        float b = quant_dequantize(q8(in[1], i * s[1], q->is_signed), q->sb, q->zb);
        float v = q->mul ? a * b : a + b;
        v = v < q->lo ? q->lo : v > q->hi ? q->hi : v; /* (NaN stays NaN, as without the clamp) */
        int32_t y = quant_quantize(v, q->sy, q->zy, q->r);
        if (q->is_signed)
            ((int8_t *)out)[i] = (int8_t)y;
        else
            ((uint8_t *)out)[i] = (uint8_t)y;
    }
}

static crun_status qelt_infer(InferCtx *c)
{
    const Tensor *a = c->in[0], *b = c->in[3];
    NODE_CHECK(c, is_8bit(a->dtype) && a->dtype == b->dtype, "A and B must be both uint8 or both int8 (got %s and %s)",
               dtype_name(a->dtype), dtype_name(b->dtype));
    for (int i = 1; i < 8; i++) {
        if (i == 3 || !c->in[i])
            continue;
        bool scale = i == 1 || i == 4 || i == 6;
        NODE_CHECK(c, tensor_numel(c->in[i]) == 1, "input %d must hold one value", i);
        NODE_CHECK(c, scale ? c->in[i]->dtype == CRUN_DTYPE_FLOAT : c->in[i]->dtype == a->dtype,
                   "input %d must be %s", i, scale ? "float" : dtype_name(a->dtype));
    }
    NODE_CHECK(c, c->in[6], "C_scale is required");
    int64_t dims[CRUN_MAX_RANK];
    int r;
    NODE_CHECK(c, broadcast_shape(a->dims, a->rank, b->dims, b->rank, dims, &r), "A and B do not broadcast");
    out_set(c->out[0], a->dtype, r, dims);
    return CRUN_OK;
}

static crun_status qelt_run(KernelCtx *k)
{
    const Tensor *a = k->in[0], *b = k->in[3], *zc = k->n_in > 7 ? k->in[7] : NULL;
    QEltArgs q = {.sa = scale_at(k->in[1], 0), .sb = scale_at(k->in[4], 0), .sy = scale_at(k->in[6], 0),
                  .za = zp_at(k->in[2], 0), .zb = zp_at(k->in[5], 0), .zy = zp_at(zc, 0),
                  .is_signed = a->dtype == CRUN_DTYPE_INT8, .mul = *(const bool *)k->kdata};
    q.r = q.is_signed ? QUANT_I8 : QUANT_U8;
    act_as_clamp(&k->node->act, &q.lo, &q.hi);
    const Tensor *ins[2] = {a, b};
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], ins, 2);
    bcast_run(&bp, k->out[0], ins, qelt_loop, &q, k->pool);
    return CRUN_OK;
}

static const bool is_add = false, is_mul = true;
static const KernelVariant qlinear_add_kernels[] = {{"qlinear_add_ref", ISA_SCALAR, NULL, NULL, qelt_run, &is_add}, {0}};
static const KernelVariant qlinear_mul_kernels[] = {{"qlinear_mul_ref", ISA_SCALAR, NULL, NULL, qelt_run, &is_mul}, {0}};

const OpDesc op_QLinearAdd = {"com.microsoft", "QLinearAdd", 7, 8, 1, 1, 0, NULL, qelt_infer, NULL,
                              qlinear_add_kernels};
const OpDesc op_QLinearMul = {"com.microsoft", "QLinearMul", 7, 8, 1, 1, 0, NULL, qelt_infer, NULL,
                              qlinear_mul_kernels};
