/* unary.c - elementwise math and activations: Relu, LeakyRelu, Sigmoid, HardSigmoid,
 * HardSwish, Tanh, Clip, Exp, Log, Sqrt, Abs, Neg, Reciprocal, Floor, Ceil, Erf, Elu,
 * Selu, Celu, Softplus, Softsign, ThresholdedRelu, Shrink, Sin, Cos, Tan, Asin, Acos,
 * Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Sign, Round, IsNaN, IsInf.
 *
 * float32, float16 and bfloat16 compute in float through the same scalar functions the
 * fused epilogues use (ops/activation.h); float32 activations have vector kernels per ISA
 * that are, again, the fused epilogues' own (platforms/act.h). So fusing never changes a
 * result on a given ISA. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/broadcast.h"
#include "ops/dtype_loops.h"
#include "ops/math_common.h"
#include "platforms/act.h"
#include "runtime/threadpool.h"

typedef struct UnaryParams {
    float alpha, beta;  /* Selu: alpha, gamma; Shrink: lambd, bias */
    bool neg, pos;      /* IsInf: detect_negative, detect_positive */
} UnaryParams;

typedef struct UnaryArgs {
    float alpha, beta;
    bool neg, pos;
    double flo, fhi;   /* Clip bounds for float types */
    int64_t ilo, ihi;  /* ... for signed integers */
    uint64_t ulo, uhi; /* ... for unsigned integers */
} UnaryArgs;

/* Scalar functions: _f computes in float, _d in double. */
#define UNARY_FN(name, fexpr, dexpr) \
    static inline float name##_f(float x, const UnaryArgs *p) { (void)p; return fexpr; } \
    static inline double name##_d(double x, const UnaryArgs *p) { (void)p; return dexpr; }

UNARY_FN(relu, act_relu(x), x > 0 ? x : 0.0)
UNARY_FN(leakyrelu, act_leakyrelu(x, p->alpha), x >= 0 ? x : p->alpha * x)
UNARY_FN(sigmoid, act_sigmoid(x), x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)))
UNARY_FN(hardsigmoid, act_hardsigmoid(x, p->alpha, p->beta), fmax(0.0, fmin(1.0, p->alpha * x + p->beta)))
UNARY_FN(hardswish, act_hardswish(x), x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5)))
UNARY_FN(tanh, tanhf(x), tanh(x))
UNARY_FN(clip, act_clip(x, (float)p->flo, (float)p->fhi), x < p->flo ? p->flo : x > p->fhi ? p->fhi : x)
UNARY_FN(exp, expf(x), exp(x))
UNARY_FN(log, logf(x), log(x))
UNARY_FN(sqrt, sqrtf(x), sqrt(x))
UNARY_FN(abs, fabsf(x), fabs(x))
UNARY_FN(neg, -x, -x)
UNARY_FN(reciprocal, 1.0f / x, 1.0 / x)
UNARY_FN(floor, floorf(x), floor(x))
UNARY_FN(ceil, ceilf(x), ceil(x))
UNARY_FN(erf, erff(x), erf(x))
/* Elu, Celu: expm1 keeps the small negative values accurate. */
UNARY_FN(elu, x >= 0 ? x : p->alpha * expm1f(x), x >= 0 ? x : p->alpha * expm1(x))
UNARY_FN(selu, x > 0 ? p->beta * x : p->beta * p->alpha * expm1f(x),
         x > 0 ? p->beta * x : (double)p->beta * p->alpha * expm1(x))
UNARY_FN(celu, x >= 0 ? x : p->alpha * expm1f(x / p->alpha), x >= 0 ? x : p->alpha * expm1(x / p->alpha))
/* log(1 + e^x) written so e^x never overflows. */
UNARY_FN(softplus, x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)), x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)))
UNARY_FN(softsign, x / (1 + fabsf(x)), x / (1 + fabs(x)))
UNARY_FN(thresholdedrelu, x > p->alpha ? x : 0, x > p->alpha ? x : 0)
UNARY_FN(shrink, x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0,
         x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0)
UNARY_FN(sin, sinf(x), sin(x))
UNARY_FN(cos, cosf(x), cos(x))
UNARY_FN(tan, tanf(x), tan(x))
UNARY_FN(asin, asinf(x), asin(x))
UNARY_FN(acos, acosf(x), acos(x))
UNARY_FN(atan, atanf(x), atan(x))
UNARY_FN(sinh, sinhf(x), sinh(x))
UNARY_FN(cosh, coshf(x), cosh(x))
UNARY_FN(asinh, asinhf(x), asinh(x))
UNARY_FN(acosh, acoshf(x), acosh(x))
UNARY_FN(atanh, atanhf(x), atanh(x))
/* Sign keeps 0, -0 and NaN as they are. */
UNARY_FN(sign, x > 0 ? 1.0f : x < 0 ? -1.0f : x, x > 0 ? 1.0 : x < 0 ? -1.0 : x)
/* Round half to even: rint under the default rounding mode. */
UNARY_FN(round, rintf(x), rint(x))

#define CALL_FN(name, x, p) _Generic((x), float: name##_f, double: name##_d)(x, p)

#define DEF_UN_FLOAT(sfx, T, C, U, LD, ST, name) \
    static void name##_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        const T *a = in[0]; \
        T *o = out; \
        for (int64_t i = 0; i < n; i++) { \
            C x = LD(a[i]); \
            o[i] = ST(CALL_FN(name, x, (const UnaryArgs *)arg)); \
        } \
    }
/* Integer versions take an expression in x (type T) and p. */
#define DEF_UN_INT(sfx, TT, C, UU, LD, ST, name, ...) \
    static void name##_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        typedef TT T; /* names the expression may use */ \
        typedef UU U; \
        (void)sizeof(U); \
        const T *a = in[0]; \
        T *o = out; \
        const UnaryArgs *p = arg; \
        (void)p; \
        for (int64_t i = 0; i < n; i++) { \
            T x = a[i]; \
            o[i] = (T)(__VA_ARGS__); \
        } \
    }
/* Integer versions that compute in double and store through conv: saturated to 64 bits,
 * then wrapped to T like a C cast from int64 (as tensor_set_int does). 64-bit values past
 * 2^53 round on the way, as they do in ONNX Runtime's float computation. */
#define DEF_UN_INT_VIA_D(sfx, TT, C, U, LD, ST, name, conv) \
    static void name##_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        typedef TT T; \
        const T *a = in[0]; \
        T *o = out; \
        for (int64_t i = 0; i < n; i++) \
            o[i] = (T)conv(name##_d((double)a[i], arg)); \
    }
/* Predicates (IsNaN, IsInf): a float type in (double stays double, so DBL_MAX is not
 * rounded to infinity), bool out; pred is an expression macro of x and p. */
#define DEF_PRED(sfx, T, C, U, LD, ST, name, pred) \
    static void name##_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        const T *a = in[0]; \
        uint8_t *o = out; \
        const UnaryArgs *p = arg; \
        (void)p; \
        for (int64_t i = 0; i < n; i++) { \
            C x = LD(a[i]); \
            o[i] = (uint8_t)(pred(x, p)); \
        } \
    }
#define TABLE_ENTRY(sfx, T, C, U, LD, ST, name, ...) [DT_##sfx] = name##_##sfx,

#define FLOAT_ONLY(name) \
    FOR_FLOAT_TYPES(DEF_UN_FLOAT, name) \
    static const BcastLoop name##_loops[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(TABLE_ENTRY, name)};

FLOAT_ONLY(leakyrelu)
FLOAT_ONLY(sigmoid)
FLOAT_ONLY(hardsigmoid)
FLOAT_ONLY(hardswish)
FLOAT_ONLY(tanh)
FLOAT_ONLY(exp)
FLOAT_ONLY(log)
FLOAT_ONLY(sqrt)
FLOAT_ONLY(reciprocal)
FLOAT_ONLY(floor)
FLOAT_ONLY(ceil)
FLOAT_ONLY(elu)
FLOAT_ONLY(selu)
FLOAT_ONLY(celu)
FLOAT_ONLY(softplus)
FLOAT_ONLY(softsign)
FLOAT_ONLY(thresholdedrelu)
FLOAT_ONLY(sin)
FLOAT_ONLY(cos)
FLOAT_ONLY(tan)
FLOAT_ONLY(asin)
FLOAT_ONLY(acos)
FLOAT_ONLY(atan)
FLOAT_ONLY(sinh)
FLOAT_ONLY(cosh)
FLOAT_ONLY(asinh)
FLOAT_ONLY(acosh)
FLOAT_ONLY(atanh)
FLOAT_ONLY(round)

/* Erf of an integer (opset 9+) is erf of its value, truncated: 0, or +-1 from |x| >= 6. */
FOR_FLOAT_TYPES(DEF_UN_FLOAT, erf)
FOR_SIGNED_TYPES(DEF_UN_INT_VIA_D, erf, double_to_i64_sat)
FOR_UNSIGNED_TYPES(DEF_UN_INT_VIA_D, erf, double_to_u64_sat)
static const BcastLoop erf_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, erf)};

FOR_FLOAT_TYPES(DEF_UN_FLOAT, shrink)
FOR_SIGNED_TYPES(DEF_UN_INT_VIA_D, shrink, double_to_i64_sat)
FOR_UNSIGNED_TYPES(DEF_UN_INT_VIA_D, shrink, double_to_u64_sat)
static const BcastLoop shrink_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, shrink)};

FOR_FLOAT_TYPES(DEF_UN_FLOAT, sign)
FOR_SIGNED_TYPES(DEF_UN_INT, sign, (x > 0) - (x < 0))
FOR_UNSIGNED_TYPES(DEF_UN_INT, sign, x > 0)
static const BcastLoop sign_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, sign)};

#define ISNAN_PRED(x, p) isnan(x)
#define ISINF_PRED(x, p) (isinf(x) && ((x) > 0 ? (p)->pos : (p)->neg))
FOR_FLOAT_TYPES(DEF_PRED, isnan, ISNAN_PRED)
FOR_FLOAT_TYPES(DEF_PRED, isinf, ISINF_PRED)
static const BcastLoop isnan_loops[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(TABLE_ENTRY, isnan)};
static const BcastLoop isinf_loops[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(TABLE_ENTRY, isinf)};

FOR_FLOAT_TYPES(DEF_UN_FLOAT, relu)
FOR_SIGNED_TYPES(DEF_UN_INT, relu, x > 0 ? x : 0)
static const BcastLoop relu_loops[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(TABLE_ENTRY, relu)
                                                      FOR_SIGNED_TYPES(TABLE_ENTRY, relu)};

FOR_FLOAT_TYPES(DEF_UN_FLOAT, abs)
FOR_SIGNED_TYPES(DEF_UN_INT, abs, x < 0 ? (T)(0 - (U)x) : x)
FOR_UNSIGNED_TYPES(DEF_UN_INT, abs, x)
static const BcastLoop abs_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, abs)};

FOR_FLOAT_TYPES(DEF_UN_FLOAT, neg)
FOR_SIGNED_TYPES(DEF_UN_INT, neg, (T)(0 - (U)x))
static const BcastLoop neg_loops[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(TABLE_ENTRY, neg) FOR_SIGNED_TYPES(TABLE_ENTRY, neg)};

FOR_FLOAT_TYPES(DEF_UN_FLOAT, clip)
FOR_SIGNED_TYPES(DEF_UN_INT, clip, x < p->ilo ? (T)p->ilo : x > p->ihi ? (T)p->ihi : x)
FOR_UNSIGNED_TYPES(DEF_UN_INT, clip, x < p->ulo ? (T)p->ulo : x > p->uhi ? (T)p->uhi : x)
static const BcastLoop clip_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, clip)};

/* ---- shared op plumbing ---- */

static crun_status unary_infer(InferCtx *c)
{
    out_set(c->out[0], c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims);
    return CRUN_OK;
}

static int64_t unary_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(out[0]);
}

static bool loops_have_dtype(const PrepCtx *c, const void *kdata)
{
    return ((const BcastLoop *)kdata)[c->in[0]->dtype] != NULL;
}

static void run_loop(KernelCtx *k, const UnaryArgs *args)
{
    const BcastLoop *loops = k->kdata;
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], k->in, 1);
    bcast_run(&bp, k->out[0], k->in, loops[k->in[0]->dtype], args, k->pool);
}

static crun_status unary_run(KernelCtx *k)
{
    const UnaryParams *p = k->params;
    UnaryArgs args = {0};
    if (p) {
        args.alpha = p->alpha;
        args.beta = p->beta;
        args.neg = p->neg;
        args.pos = p->pos;
    }
    run_loop(k, &args);
    return CRUN_OK;
}

/* Two float attributes into alpha and beta. */
static crun_status parse_floats(Node *n, Diag *d, const char *a, float a_def, const char *b, float b_def)
{
    UnaryParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_float(n, a, a_def, &p->alpha, d);
    if (st == CRUN_OK && b)
        st = attr_get_float(n, b, b_def, &p->beta, d);
    return st;
}

static crun_status parse_leakyrelu(Node *n, Diag *d) { return parse_floats(n, d, "alpha", 0.01f, NULL, 0); }
static crun_status parse_hardsigmoid(Node *n, Diag *d) { return parse_floats(n, d, "alpha", 0.2f, "beta", 0.5f); }
static crun_status parse_alpha1(Node *n, Diag *d) { return parse_floats(n, d, "alpha", 1.0f, NULL, 0); }
static crun_status parse_shrink(Node *n, Diag *d) { return parse_floats(n, d, "lambd", 0.5f, "bias", 0.0f); }

/* Selu's defaults were rounded to 4 decimals in opset 1; opset 6 has them to float
 * precision (1.67326319..., 1.05070102...). */
static crun_status parse_selu(Node *n, Diag *d)
{
    bool v1 = n->opset < 6;
    return parse_floats(n, d, "alpha", v1 ? 1.6732f : 1.67326319217681884765625f, "gamma",
                        v1 ? 1.0507f : 1.05070102214813232421875f);
}

static crun_status parse_isinf(Node *n, Diag *d)
{
    UnaryParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    int64_t neg = 1, pos = 1;
    crun_status st = attr_get_int(n, "detect_negative", 1, &neg, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "detect_positive", 1, &pos, d);
    p->neg = neg != 0;
    p->pos = pos != 0;
    return st;
}

static crun_status pred_infer(InferCtx *c)
{
    out_set(c->out[0], CRUN_DTYPE_BOOL, c->in[0]->rank, c->in[0]->dims);
    return CRUN_OK;
}

/* ---- float32 activations through the vector kernels (platforms/act.h) ---- */

typedef struct UnaryVec {
    ActKind kind;
    Isa isa;
} UnaryVec;

KV_SIMD_ONLY static bool unary_vec_applies(const PrepCtx *c, const void *kdata)
{
    const UnaryVec *uv = kdata;
    return c->in[0]->dtype == CRUN_DTYPE_FLOAT && act_vec_for(uv->isa) != NULL;
}

typedef struct UnaryVecJob {
    ActVecFn fn;
    Activation act;
    const float *x;
    float *y;
    int64_t n, chunk;
} UnaryVecJob;

static void unary_vec_task(void *ctx, int64_t t, int thread)
{
    const UnaryVecJob *j = ctx;
    int64_t i0 = t * j->chunk;
    j->fn(&j->act, j->y + i0, j->x + i0, CRUN_MIN(j->chunk, j->n - i0));
}

KV_SIMD_ONLY static crun_status unary_vec_run(KernelCtx *k)
{
    const UnaryVec *uv = k->kdata;
    const UnaryParams *p = k->params;
    UnaryVecJob j = {act_vec_for(uv->isa), {.kind = uv->kind, .alpha = p ? p->alpha : 0, .beta = p ? p->beta : 0},
                     k->in[0]->data, k->out[0]->data, tensor_numel(k->out[0]), 16384};
    pool_for(k->pool, (j.n + j.chunk - 1) / j.chunk, unary_vec_task, &j);
    return CRUN_OK;
}

#ifdef CRUN_HAVE_AVX512
#define VEC_AVX512(kind) {"unary_avx512", ISA_AVX512, unary_vec_applies, NULL, unary_vec_run, &(const UnaryVec){kind, ISA_AVX512}},
#else
#define VEC_AVX512(kind)
#endif
#ifdef CRUN_HAVE_AVX2
#define VEC_AVX2(kind) {"unary_avx2", ISA_AVX2, unary_vec_applies, NULL, unary_vec_run, &(const UnaryVec){kind, ISA_AVX2}},
#else
#define VEC_AVX2(kind)
#endif
#ifdef CRUN_HAVE_NEON
#define VEC_NEON(kind) {"unary_neon", ISA_NEON, unary_vec_applies, NULL, unary_vec_run, &(const UnaryVec){kind, ISA_NEON}},
#else
#define VEC_NEON(kind)
#endif

/* An activation op: the vector kernels for float32, the typed loops for the rest. */
#define UNARY_ACT_OP(id, name, loops, parse, kind) \
    static const KernelVariant id##_kernels[] = { \
        VEC_AVX512(kind) VEC_AVX2(kind) VEC_NEON(kind) \
        {"unary_ref", ISA_SCALAR, loops_have_dtype, NULL, unary_run, loops}, {0}}; \
    const OpDesc op_##id = {"", name, 1, 1, 1, 1, OPF_INPLACE, parse, unary_infer, unary_flops, id##_kernels};

#define UNARY_OP_INFER(id, name, loops, parse, infer, flags) \
    static const KernelVariant id##_kernels[] = { \
        {"unary_ref", ISA_SCALAR, loops_have_dtype, NULL, unary_run, loops}, {0}}; \
    const OpDesc op_##id = {"", name, 1, 1, 1, 1, OPF_INPLACE | (flags), parse, infer, unary_flops, id##_kernels};
#define UNARY_OP(id, name, loops, parse, flags) UNARY_OP_INFER(id, name, loops, parse, unary_infer, flags)

UNARY_ACT_OP(Relu, "Relu", relu_loops, NULL, ACT_RELU)
UNARY_ACT_OP(LeakyRelu, "LeakyRelu", leakyrelu_loops, parse_leakyrelu, ACT_LEAKYRELU)
UNARY_ACT_OP(Sigmoid, "Sigmoid", sigmoid_loops, NULL, ACT_SIGMOID)
UNARY_ACT_OP(HardSigmoid, "HardSigmoid", hardsigmoid_loops, parse_hardsigmoid, ACT_HARDSIGMOID)
UNARY_ACT_OP(HardSwish, "HardSwish", hardswish_loops, NULL, ACT_HARDSWISH)
UNARY_ACT_OP(Tanh, "Tanh", tanh_loops, NULL, ACT_TANH)
UNARY_OP(Exp, "Exp", exp_loops, NULL, 0)
UNARY_OP(Log, "Log", log_loops, NULL, 0)
UNARY_OP(Sqrt, "Sqrt", sqrt_loops, NULL, 0)
UNARY_OP(Abs, "Abs", abs_loops, NULL, 0)
UNARY_OP(Neg, "Neg", neg_loops, NULL, 0)
UNARY_OP(Reciprocal, "Reciprocal", reciprocal_loops, NULL, 0)
UNARY_OP(Floor, "Floor", floor_loops, NULL, 0)
UNARY_OP(Ceil, "Ceil", ceil_loops, NULL, 0)
UNARY_ACT_OP(Erf, "Erf", erf_loops, NULL, ACT_ERF)
UNARY_OP(Elu, "Elu", elu_loops, parse_alpha1, 0)
UNARY_OP(Selu, "Selu", selu_loops, parse_selu, 0)
UNARY_OP(Celu, "Celu", celu_loops, parse_alpha1, 0)
UNARY_OP(Softplus, "Softplus", softplus_loops, NULL, 0)
UNARY_OP(Softsign, "Softsign", softsign_loops, NULL, 0)
UNARY_OP(ThresholdedRelu, "ThresholdedRelu", thresholdedrelu_loops, parse_alpha1, 0)
UNARY_OP(Shrink, "Shrink", shrink_loops, parse_shrink, 0)
UNARY_OP(Sin, "Sin", sin_loops, NULL, 0)
UNARY_OP(Cos, "Cos", cos_loops, NULL, 0)
UNARY_OP(Tan, "Tan", tan_loops, NULL, 0)
UNARY_OP(Asin, "Asin", asin_loops, NULL, 0)
UNARY_OP(Acos, "Acos", acos_loops, NULL, 0)
UNARY_OP(Atan, "Atan", atan_loops, NULL, 0)
UNARY_OP(Sinh, "Sinh", sinh_loops, NULL, 0)
UNARY_OP(Cosh, "Cosh", cosh_loops, NULL, 0)
UNARY_OP(Asinh, "Asinh", asinh_loops, NULL, 0)
UNARY_OP(Acosh, "Acosh", acosh_loops, NULL, 0)
UNARY_OP(Atanh, "Atanh", atanh_loops, NULL, 0)
UNARY_OP(Sign, "Sign", sign_loops, NULL, 0)
UNARY_OP(Round, "Round", round_loops, NULL, 0)
UNARY_OP_INFER(IsNaN, "IsNaN", isnan_loops, NULL, pred_infer, 0)
UNARY_OP_INFER(IsInf, "IsInf", isinf_loops, parse_isinf, pred_infer, 0)

/* ---- Clip: bounds are attributes before opset 11, optional inputs after ---- */

typedef struct ClipParams {
    float min, max; /* opset < 11 */
} ClipParams;

static crun_status parse_clip(Node *n, Diag *d)
{
    ClipParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_float(n, "min", -FLT_MAX, &p->min, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "max", FLT_MAX, &p->max, d);
    return st;
}

static crun_status clip_infer(InferCtx *c)
{
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i]) {
            NODE_CHECK(c, c->in[i]->dtype == c->in[0]->dtype, "bound %d has type %s, input has %s", i,
                       dtype_name(c->in[i]->dtype), dtype_name(c->in[0]->dtype));
            NODE_CHECK(c, tensor_numel(c->in[i]) == 1, "bound %d must hold one value", i);
        }
    return unary_infer(c);
}

static void clip_defaults(crun_dtype t, UnaryArgs *a)
{
    a->flo = -INFINITY;
    a->fhi = INFINITY;
    a->ulo = 0;
    a->uhi = UINT64_MAX;
    switch (t) {
    case CRUN_DTYPE_INT8: a->ilo = INT8_MIN, a->ihi = INT8_MAX; break;
    case CRUN_DTYPE_INT16: a->ilo = INT16_MIN, a->ihi = INT16_MAX; break;
    case CRUN_DTYPE_INT32: a->ilo = INT32_MIN, a->ihi = INT32_MAX; break;
    default: a->ilo = INT64_MIN, a->ihi = INT64_MAX; break;
    }
}

static void clip_bound(const Tensor *b, double *f, int64_t *i, uint64_t *u)
{
    if (!b)
        return;
    if (dtype_is_float(b->dtype))
        *f = tensor_get_double(b, 0);
    else if (b->dtype == CRUN_DTYPE_UINT64)
        *u = ((const uint64_t *)b->data)[0];
    else {
        *i = tensor_get_int(b, 0);
        *u = (uint64_t)*i;
    }
}

static crun_status clip_run(KernelCtx *k)
{
    UnaryArgs a = {0};
    clip_defaults(k->in[0]->dtype, &a);
    if (k->node->opset < 11) {
        const ClipParams *p = k->params;
        a.flo = p->min;
        a.fhi = p->max;
    } else {
        clip_bound(k->n_in > 1 ? k->in[1] : NULL, &a.flo, &a.ilo, &a.ulo);
        clip_bound(k->n_in > 2 ? k->in[2] : NULL, &a.fhi, &a.ihi, &a.uhi);
    }
    run_loop(k, &a);
    return CRUN_OK;
}

static const KernelVariant clip_kernels[] = {{"clip_ref", ISA_SCALAR, loops_have_dtype, NULL, clip_run, clip_loops},
                                             {0}};
const OpDesc op_Clip = {"", "Clip", 1, 3, 1, 1, OPF_INPLACE, parse_clip, clip_infer, unary_flops, clip_kernels};
