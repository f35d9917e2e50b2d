/* compare.c - comparisons and logic with broadcasting, all giving bool: Equal, Less,
 * Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor, Not; and Where, which selects.
 *
 * Opset 1 of Equal/Less/Greater/And/Or/Xor broadcasts the legacy way (broadcast/axis
 * attributes, math_common.h). A comparison with NaN is false (Equal too), as in IEEE. */
#include <string.h>

#include "ops/dtype_loops.h"
#include "ops/math_common.h"

#define ST_BOOL(v) ((uint8_t)((v) ? 1 : 0))

#define DEF_CMP(sfx, TT, CC, UU, LD, ST, name, ...) \
    static void name##_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        typedef TT T; \
        typedef CC C; \
        (void)arg; \
        MATH_BIN_LOOP(uint8_t, LD, ST_BOOL, __VA_ARGS__); \
    }
#define TABLE_ENTRY(sfx, T, C, U, LD, ST, name, ...) [DT_##sfx] = name##_##sfx,
/* bool as one more entry of the lists (0 or 1 per byte; any nonzero byte is true). */
#define WITH_BOOL(X, name, ...) X(bool, uint8_t, uint8_t, unsigned, LD_ID, ST_ID, name, __VA_ARGS__)

FOR_NUMERIC_TYPES(DEF_CMP, eq, x == y)
WITH_BOOL(DEF_CMP, eq, (x != 0) == (y != 0))
FOR_NUMERIC_TYPES(DEF_CMP, lt, x < y)
FOR_NUMERIC_TYPES(DEF_CMP, gt, x > y)
FOR_NUMERIC_TYPES(DEF_CMP, le, x <= y)
FOR_NUMERIC_TYPES(DEF_CMP, ge, x >= y)
WITH_BOOL(DEF_CMP, and, x && y)
WITH_BOOL(DEF_CMP, or, x || y)
WITH_BOOL(DEF_CMP, xor, (x != 0) != (y != 0))

static const BcastLoop eq_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, eq) WITH_BOOL(TABLE_ENTRY, eq, )};
static const BcastLoop lt_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, lt)};
static const BcastLoop gt_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, gt)};
static const BcastLoop le_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, le)};
static const BcastLoop ge_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, ge)};
static const BcastLoop and_loops[DTYPE_SLOTS] = {WITH_BOOL(TABLE_ENTRY, and, )};
static const BcastLoop or_loops[DTYPE_SLOTS] = {WITH_BOOL(TABLE_ENTRY, or, )};
static const BcastLoop xor_loops[DTYPE_SLOTS] = {WITH_BOOL(TABLE_ENTRY, xor, )};

typedef struct CompareParams {
    LegacyBcast lb;
} CompareParams;

static crun_status parse_compare(Node *n, Diag *d)
{
    CompareParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    return legacy_bcast_parse(n, d, &p->lb);
}

static crun_status compare_infer(InferCtx *c)
{
    const CompareParams *p = c->params;
    const Tensor *a = c->in[0], *b = c->in[1];
    NODE_CHECK(c, a->dtype == b->dtype, "inputs have different types %s and %s", dtype_name(a->dtype),
               dtype_name(b->dtype));
    int64_t dims[CRUN_MAX_RANK];
    int rank;
    crun_status st = math_binary_shape(c, p ? &p->lb : NULL, dims, &rank);
    if (st == CRUN_OK)
        out_set(c->out[0], CRUN_DTYPE_BOOL, rank, dims);
    return st;
}

static crun_status compare_run(KernelCtx *k)
{
    const CompareParams *p = k->params;
    const BcastLoop *loops = k->kdata;
    Tensor b2;
    math_binary_inputs(p ? &p->lb : NULL, k->in[0], k->in[1], &b2);
    const Tensor *in[2] = {k->in[0], &b2};
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], in, 2);
    bcast_run(&bp, k->out[0], in, loops[k->in[0]->dtype], NULL, k->pool);
    return CRUN_OK;
}

#define COMPARE_OP(id, name, loops) \
    static const KernelVariant id##_kernels[] = { \
        {"compare_ref", ISA_SCALAR, math_loops_have_dtype, NULL, compare_run, loops}, {0}}; \
    const OpDesc op_##id = {"", name, 2, 2, 1, 1, OPF_INPLACE, parse_compare, compare_infer, math_elementwise_flops, \
                            id##_kernels};

COMPARE_OP(Equal, "Equal", eq_loops)
COMPARE_OP(Less, "Less", lt_loops)
COMPARE_OP(Greater, "Greater", gt_loops)
COMPARE_OP(LessOrEqual, "LessOrEqual", le_loops)
COMPARE_OP(GreaterOrEqual, "GreaterOrEqual", ge_loops)
COMPARE_OP(And, "And", and_loops)
COMPARE_OP(Or, "Or", or_loops)
COMPARE_OP(Xor, "Xor", xor_loops)

/* ---- Not ---- */

static void not_loop(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg)
{
    const uint8_t *a = in[0];
    uint8_t *o = out;
    (void)arg;
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i * s[0]] == 0;
}

static crun_status not_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->dtype == CRUN_DTYPE_BOOL, "input has type %s, expected bool", dtype_name(x->dtype));
    out_set(c->out[0], CRUN_DTYPE_BOOL, x->rank, x->dims);
    return CRUN_OK;
}

static crun_status not_run(KernelCtx *k)
{
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], k->in, 1);
    bcast_run(&bp, k->out[0], k->in, not_loop, NULL, k->pool);
    return CRUN_OK;
}

static const KernelVariant not_kernels[] = {{"not_ref", ISA_SCALAR, NULL, NULL, not_run, NULL}, {0}};
const OpDesc op_Not = {"", "Not", 1, 1, 1, 1, OPF_INPLACE, NULL, not_infer, math_elementwise_flops, not_kernels};

/* ---- Where: out = cond ? x : y with three-way broadcasting. The elements are copied as
 * bytes, so one loop per element size serves every type but strings. ---- */

typedef struct Bytes16 {
    uint64_t lo, hi;
} Bytes16;

#define DEF_WHERE(sfx, T) \
    static void where_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        const uint8_t *c = in[0]; \
        const T *x = in[1], *y = in[2]; \
        T *o = out; \
        (void)arg; \
        if (s[0] && s[1] && s[2]) { \
            for (int64_t i = 0; i < n; i++) \
                o[i] = c[i] ? x[i] : y[i]; \
        } else { \
            for (int64_t i = 0; i < n; i++) \
                o[i] = c[i * s[0]] ? x[i * s[1]] : y[i * s[2]]; \
        } \
    }
DEF_WHERE(1, uint8_t)
DEF_WHERE(2, uint16_t)
DEF_WHERE(4, uint32_t)
DEF_WHERE(8, uint64_t)
DEF_WHERE(16, Bytes16)

static BcastLoop where_loop(crun_dtype t)
{
    if (t == CRUN_DTYPE_STRING)
        return NULL;
    switch (dtype_size(t)) {
    case 1: return where_1;
    case 2: return where_2;
    case 4: return where_4;
    case 8: return where_8;
    case 16: return where_16;
    default: return NULL;
    }
}

static crun_status where_infer(InferCtx *c)
{
    const Tensor *cond = c->in[0], *x = c->in[1], *y = c->in[2];
    NODE_CHECK(c, cond->dtype == CRUN_DTYPE_BOOL, "condition has type %s, expected bool", dtype_name(cond->dtype));
    NODE_CHECK(c, x->dtype == y->dtype, "X has type %s, Y has %s", dtype_name(x->dtype), dtype_name(y->dtype));
    if (!where_loop(x->dtype))
        return node_fail(c->node, c->d, CRUN_ERR_UNSUPPORTED, "element type %s is not supported",
                         dtype_name(x->dtype));
    int64_t d1[CRUN_MAX_RANK], d2[CRUN_MAX_RANK];
    int r1, r2;
    char sc[96], sx[96], sy[96];
    NODE_CHECK(c,
               broadcast_shape(cond->dims, cond->rank, x->dims, x->rank, d1, &r1) &&
                   broadcast_shape(d1, r1, y->dims, y->rank, d2, &r2),
               "cannot broadcast condition %s, X %s and Y %s", shape_str(cond->dims, cond->rank, sc, sizeof sc),
               shape_str(x->dims, x->rank, sx, sizeof sx), shape_str(y->dims, y->rank, sy, sizeof sy));
    out_set(c->out[0], x->dtype, r2, d2);
    return CRUN_OK;
}

static bool where_applies(const PrepCtx *c, const void *kdata)
{
    (void)kdata;
    return where_loop(c->in[1]->dtype) != NULL;
}

static crun_status where_run(KernelCtx *k)
{
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], k->in, 3);
    bcast_run(&bp, k->out[0], k->in, where_loop(k->in[1]->dtype), NULL, k->pool);
    return CRUN_OK;
}

static const KernelVariant where_kernels[] = {{"where_ref", ISA_SCALAR, where_applies, NULL, where_run, NULL}, {0}};
const OpDesc op_Where = {"", "Where", 3, 3, 1, 1, OPF_INPLACE, NULL, where_infer, math_elementwise_flops,
                         where_kernels};
