/* arith.c - binary arithmetic with broadcasting: Add, Sub, Mul, Div, Pow.
 *
 * Integer arithmetic wraps (two's complement) as ONNX Runtime does; integer division
 * truncates toward zero and division by zero gives 0 instead of trapping. */
#include <math.h>

#include "ops/broadcast.h"
#include "ops/dtype_loops.h"
#include "runtime/threadpool.h"

/* One loop per (op, type). x and y are the loaded operands of compute type C; the
 * expression may name the storage type T and the unsigned type U. */
#define DEF_BIN(sfx, TT, CC, UU, LD, ST, name, ...) \
    static void name##_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        typedef TT T; /* names the expressions may use */ \
        typedef CC C; \
        typedef UU U; \
        (void)sizeof(U); \
        const T *a = in[0], *b = in[1]; \
        T *o = out; \
        (void)arg; \
        if (s[0] && s[1]) { \
            for (int64_t i = 0; i < n; i++) { \
                C x = LD(a[i]), y = LD(b[i]); \
                o[i] = ST(__VA_ARGS__); \
            } \
        } else if (s[0]) { \
            C y = LD(b[0]); \
            for (int64_t i = 0; i < n; i++) { \
                C x = LD(a[i]); \
                o[i] = ST(__VA_ARGS__); \
            } \
        } else if (s[1]) { \
            C x = LD(a[0]); \
            for (int64_t i = 0; i < n; i++) { \
                C y = LD(b[i]); \
                o[i] = ST(__VA_ARGS__); \
            } \
        } else { \
            C x = LD(a[0]), y = LD(b[0]); \
            T r = ST(__VA_ARGS__); \
            for (int64_t i = 0; i < n; i++) \
                o[i] = r; \
        } \
    }
#define TABLE_ENTRY(sfx, T, C, U, LD, ST, name) [DT_##sfx] = name##_##sfx,

FOR_FLOAT_TYPES(DEF_BIN, add, x + y)
FOR_INT_TYPES(DEF_BIN, add, (T)((U)x + (U)y))
FOR_FLOAT_TYPES(DEF_BIN, sub, x - y)
FOR_INT_TYPES(DEF_BIN, sub, (T)((U)x - (U)y))
FOR_FLOAT_TYPES(DEF_BIN, mul, x * y)
FOR_INT_TYPES(DEF_BIN, mul, (T)((U)x * (U)y))
FOR_FLOAT_TYPES(DEF_BIN, div, x / y)
FOR_SIGNED_TYPES(DEF_BIN, div, y == 0 ? (T)0 : y == -1 ? (T)(0 - (U)x) : (T)(x / y))
FOR_UNSIGNED_TYPES(DEF_BIN, div, y == 0 ? (T)0 : (T)(x / y))

static const BcastLoop add_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, add)};
static const BcastLoop sub_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, sub)};
static const BcastLoop mul_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, mul)};
static const BcastLoop div_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, div)};

static crun_status binary_infer(InferCtx *c)
{
    const Tensor *a = c->in[0], *b = c->in[1];
    NODE_CHECK(c, a->dtype == b->dtype, "inputs have different types %s and %s", dtype_name(a->dtype),
               dtype_name(b->dtype));
    int64_t dims[CRUN_MAX_RANK];
    int rank;
    char sa[96], sb[96];
    NODE_CHECK(c, broadcast_shape(a->dims, a->rank, b->dims, b->rank, dims, &rank), "cannot broadcast %s with %s",
               shape_str(a->dims, a->rank, sa, sizeof sa), shape_str(b->dims, b->rank, sb, sizeof sb));
    out_set(c->out[0], a->dtype, rank, dims);
    return CRUN_OK;
}

static int64_t elementwise_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(out[0]);
}

static bool loops_have_dtype(const PrepCtx *c, const void *kdata)
{
    const BcastLoop *loops = kdata;
    return loops[c->in[0]->dtype] != NULL;
}

static crun_status binary_run(KernelCtx *k)
{
    const BcastLoop *loops = k->kdata;
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], k->in, 2);
    bcast_run(&bp, k->out[0], k->in, loops[k->in[0]->dtype], NULL, k->pool);
    return CRUN_OK;
}

#define BINARY_OP(id, name, loops) \
    static const KernelVariant id##_kernels[] = { \
        {"binary_ref", ISA_SCALAR, loops_have_dtype, NULL, binary_run, loops}, {0}}; \
    const OpDesc op_##id = {"", name, 2, 2, 1, 1, OPF_INPLACE, NULL, binary_infer, elementwise_flops, id##_kernels};

BINARY_OP(Add, "Add", add_loops)
BINARY_OP(Sub, "Sub", sub_loops)
BINARY_OP(Mul, "Mul", mul_loops)
BINARY_OP(Div, "Div", div_loops)

/* ---- Pow: the exponent may have another type than the base (opset 12+) ---- */

static crun_status pow_infer(InferCtx *c)
{
    const Tensor *a = c->in[0], *b = c->in[1];
    NODE_CHECK(c, dtype_is_float(a->dtype) || dtype_is_int(a->dtype), "base type %s not supported",
               dtype_name(a->dtype));
    NODE_CHECK(c, dtype_is_float(b->dtype) || dtype_is_int(b->dtype), "exponent type %s not supported",
               dtype_name(b->dtype));
    int64_t dims[CRUN_MAX_RANK];
    int rank;
    char sa[96], sb[96];
    NODE_CHECK(c, broadcast_shape(a->dims, a->rank, b->dims, b->rank, dims, &rank), "cannot broadcast %s with %s",
               shape_str(a->dims, a->rank, sa, sizeof sa), shape_str(b->dims, b->rank, sb, sizeof sb));
    out_set(c->out[0], a->dtype, rank, dims);
    return CRUN_OK;
}

static void pow_f32(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg)
{
    const float *a = in[0], *b = in[1];
    float *o = out;
    for (int64_t i = 0; i < n; i++)
        o[i] = powf(a[i * s[0]], b[i * s[1]]);
}

typedef struct PowArg {
    crun_dtype ta, tb, to;
} PowArg;

/* Any other type pair: compute in double, store with the output type's conversion. */
static void pow_any(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg)
{
    const PowArg *p = arg;
    Tensor ta = {.dtype = p->ta, .data = (void *)in[0]}, tb = {.dtype = p->tb, .data = (void *)in[1]};
    Tensor to = {.dtype = p->to, .data = out};
    for (int64_t i = 0; i < n; i++) {
        double x = tensor_get_double(&ta, i * s[0]), y = tensor_get_double(&tb, i * s[1]);
        tensor_set_double(&to, i, pow(x, y));
    }
}

static crun_status pow_run(KernelCtx *k)
{
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], k->in, 2);
    PowArg arg = {k->in[0]->dtype, k->in[1]->dtype, k->out[0]->dtype};
    bool f32 = arg.ta == CRUN_DTYPE_FLOAT && arg.tb == CRUN_DTYPE_FLOAT;
    bcast_run(&bp, k->out[0], k->in, f32 ? pow_f32 : pow_any, &arg, k->pool);
    return CRUN_OK;
}

static const KernelVariant pow_kernels[] = {{"pow_ref", ISA_SCALAR, NULL, NULL, pow_run, NULL}, {0}};
const OpDesc op_Pow = {"", "Pow", 2, 2, 1, 1, 0, NULL, pow_infer, elementwise_flops, pow_kernels};
