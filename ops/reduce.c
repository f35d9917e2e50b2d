/* reduce.c - reductions over a set of axes (ReduceSum, ReduceMean, ReduceMax, ReduceMin,
 * ReduceProd, ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare) and
 * along one axis (ArgMax, ArgMin, CumSum, TopK).
 *
 * A reduction merges the input's dims into alternating kept and reduced groups (dims of
 * size 1 drop out), so every choice of axes becomes one loop nest: outputs walk the kept
 * groups, each output walks the reduced groups. When the innermost group is kept, one
 * work unit reduces a chunk of adjacent outputs together so the innermost loop still
 * reads memory contiguously.
 *
 * Float types accumulate in double. Integer types accumulate in 64-bit two's complement,
 * which for Sum, Prod and SumSquare equals wrapping in the element type; L2, LogSum and
 * LogSumExp are real-valued and go through double even for integers (saturated back).
 * An empty reduction gives the operation's identity (opset 18 states it; earlier specs
 * are silent): 0 for the sums, 1 for Prod, -inf or the lowest integer for Max, +inf or
 * the highest for Min, -inf for LogSum and LogSumExp, NaN (floats) or 0 (integers) for
 * Mean. */
#include <math.h>
#include <string.h>

#include "ops/dtype_loops.h"
#include "ops/registry.h"
#include "runtime/threadpool.h"

/* Work units are grouped into tasks of at least this many elements read. */
#define TASK_ELEMS 16384
/* Adjacent outputs one work unit reduces together when the innermost dim is kept. */
#define RED_CHUNK 64

/* Number of tasks when each of n_units units reads unit_elems elements, and how many
 * units go into one task (the split never changes a result: units are independent). */
static int64_t group_units(int64_t n_units, int64_t unit_elems, int64_t *per_task)
{
    int64_t per = unit_elems >= TASK_ELEMS ? 1 : TASK_ELEMS / CRUN_MAX(unit_elems, 1);
    *per_task = per;
    return (n_units + per - 1) / per;
}

/* Offset of flat index idx over dims (outermost first) with the given strides. */
static inline int64_t flat_offset(const int64_t *dims, const int64_t *strides, int n, int64_t idx)
{
    int64_t off = 0;
    for (int i = n - 1; i >= 0; i--) {
        off += idx % dims[i] * strides[i];
        idx /= dims[i];
    }
    return off;
}

/* ---- saturating conversions from double (real-valued results into integer types) ---- */

static inline int64_t sat_i64(double v, int64_t lo, int64_t hi)
{
    if (v != v)
        return 0;
    if (v <= (double)lo)
        return lo;
    if (v >= (double)hi)
        return hi;
    return (int64_t)v;
}

static inline uint64_t sat_u64(double v, uint64_t hi)
{
    if (!(v > 0))
        return 0;
    if (v >= (double)hi)
        return hi;
    return (uint64_t)v;
}

#define LO_i8 INT8_MIN
#define LO_i16 INT16_MIN
#define LO_i32 INT32_MIN
#define LO_i64 INT64_MIN
#define HI_i8 INT8_MAX
#define HI_i16 INT16_MAX
#define HI_i32 INT32_MAX
#define HI_i64 INT64_MAX
#define HI_u8 UINT8_MAX
#define HI_u16 UINT16_MAX
#define HI_u32 UINT32_MAX
#define HI_u64 UINT64_MAX

#define SAT_i8(v) (int8_t) sat_i64(v, INT8_MIN, INT8_MAX)
#define SAT_i16(v) (int16_t) sat_i64(v, INT16_MIN, INT16_MAX)
#define SAT_i32(v) (int32_t) sat_i64(v, INT32_MIN, INT32_MAX)
#define SAT_i64(v) sat_i64(v, INT64_MIN, INT64_MAX)
#define SAT_u8(v) (uint8_t) sat_u64(v, UINT8_MAX)
#define SAT_u16(v) (uint16_t) sat_u64(v, UINT16_MAX)
#define SAT_u32(v) (uint32_t) sat_u64(v, UINT32_MAX)
#define SAT_u64(v) sat_u64(v, UINT64_MAX)

/* Stores a double into a float type. */
#define STF_f32(v) ((float)(v))
#define STF_f64(v) (v)
#define STF_f16(v) f32_to_fp16((float)(v))
#define STF_bf16(v) f32_to_bf16((float)(v))

/* ==== ReduceXxx ==== */

typedef enum RedKind {
    RED_SUM,
    RED_MEAN,
    RED_MAX,
    RED_MIN,
    RED_PROD,
    RED_L1,
    RED_L2,
    RED_LOGSUM,
    RED_LSE,
    RED_SUMSQ,
    RED_KINDS
} RedKind;

/* Kept and reduced groups of the input, outermost first, with their strides. */
typedef struct RedGeom {
    int n_keep, n_red;
    int64_t keep_dim[CRUN_MAX_RANK], keep_str[CRUN_MAX_RANK];
    int64_t red_dim[CRUN_MAX_RANK], red_str[CRUN_MAX_RANK];
    int64_t inner; /* the innermost group when it is kept (stride 1), else 1 */
    int64_t count; /* elements reduced into each output */
} RedGeom;

static void red_geom(const int64_t *dims, int rank, const bool *reduced, RedGeom *g)
{
    int64_t gd[CRUN_MAX_RANK];
    bool gr[CRUN_MAX_RANK];
    int ng = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 1)
            continue;
        if (ng && gr[ng - 1] == reduced[i]) {
            gd[ng - 1] *= dims[i];
        } else {
            gd[ng] = dims[i];
            gr[ng++] = reduced[i];
        }
    }
    memset(g, 0, sizeof *g);
    g->inner = 1;
    if (ng && !gr[ng - 1])
        g->inner = gd[--ng];
    int64_t stride = g->inner;
    int nk = 0, nr = 0;
    for (int i = 0; i < ng; i++)
        nk += !gr[i], nr += gr[i];
    g->n_keep = nk;
    g->n_red = nr;
    g->count = 1;
    for (int i = ng - 1; i >= 0; i--) {
        if (gr[i]) {
            g->red_dim[--nr] = gd[i];
            g->red_str[nr] = stride;
            g->count *= gd[i];
        } else {
            g->keep_dim[--nk] = gd[i];
            g->keep_str[nk] = stride;
        }
        stride *= gd[i];
    }
}

typedef struct RedJob RedJob;
typedef void (*RedFn)(const RedJob *j, int64_t unit);

struct RedJob {
    const void *x;
    void *y;
    RedGeom g;
    int64_t chunks; /* work units per row of inner outputs */
    int64_t n_units, per_task;
    RedFn fn;
};

/* Accumulator kinds: INIT(a, b, lo, hi), STEP(a, b, v), FIN(a, b, n). a is the
 * accumulator, b a second one (double) only LogSumExp uses, lo/hi the type's range
 * (identities of Max and Min), n the number of elements reduced. */
#define DK_INIT0(a, b, lo, hi) ((a) = 0, (b) = 0)
#define DK_sum_INIT DK_INIT0
#define DK_sum_STEP(a, b, v) ((a) += (v))
#define DK_sum_FIN(a, b, n) (a)
#define DK_mean_INIT DK_INIT0
#define DK_mean_STEP DK_sum_STEP
#define DK_mean_FIN(a, b, n) ((n) ? (a) / (double)(n) : NAN)
#define DK_max_INIT(a, b, lo, hi) ((a) = (lo), (b) = 0)
#define DK_max_STEP(a, b, v) ((a) = (v) > (a) || isnan(v) ? (v) : (a))
#define DK_max_FIN DK_sum_FIN
#define DK_min_INIT(a, b, lo, hi) ((a) = (hi), (b) = 0)
#define DK_min_STEP(a, b, v) ((a) = (v) < (a) || isnan(v) ? (v) : (a))
#define DK_min_FIN DK_sum_FIN
#define DK_prod_INIT(a, b, lo, hi) ((a) = 1, (b) = 0)
#define DK_prod_STEP(a, b, v) ((a) *= (v))
#define DK_prod_FIN DK_sum_FIN
#define DK_l1_INIT DK_INIT0
#define DK_l1_STEP(a, b, v) ((a) += fabs(v))
#define DK_l1_FIN DK_sum_FIN
#define DK_l2_INIT DK_INIT0
#define DK_l2_STEP(a, b, v) ((a) += (v) * (v))
#define DK_l2_FIN(a, b, n) sqrt(a)
#define DK_sumsq_INIT DK_INIT0
#define DK_sumsq_STEP DK_l2_STEP
#define DK_sumsq_FIN DK_sum_FIN
#define DK_logsum_INIT DK_INIT0
#define DK_logsum_STEP DK_sum_STEP
#define DK_logsum_FIN(a, b, n) log(a)
/* LogSumExp keeps the running maximum a and sum(exp(x - a)) in b, rescaling b when the
 * maximum grows, so no exp overflows. */
#define DK_lse_INIT(a, b, lo, hi) ((a) = -INFINITY, (b) = 0)
#define DK_lse_STEP(a, b, v) \
    do { \
        if ((v) > (a)) { \
            (b) = (b) * exp((a) - (v)) + 1; \
            (a) = (v); \
        } else if ((v) == (a)) { \
            (b) += 1; \
        } else { \
            (b) += exp((v) - (a)); \
        } \
    } while (0)
#define DK_lse_FIN(a, b, n) ((b) == 0 ? -INFINITY : (a) + log(b))

/* Integer kinds: arithmetic wraps through uint64_t. */
#define IK_sum_INIT DK_INIT0
#define IK_sum_STEP(a, b, v) ((a) = (A)((uint64_t)(a) + (uint64_t)(v)))
#define IK_sum_FIN DK_sum_FIN
#define IK_mean_INIT DK_INIT0
#define IK_mean_STEP IK_sum_STEP
#define IK_mean_FIN(a, b, n) ((n) ? (a) / (A)(n) : 0)
#define IK_max_INIT DK_max_INIT
#define IK_max_STEP(a, b, v) ((a) = (v) > (a) ? (v) : (a))
#define IK_max_FIN DK_sum_FIN
#define IK_min_INIT DK_min_INIT
#define IK_min_STEP(a, b, v) ((a) = (v) < (a) ? (v) : (a))
#define IK_min_FIN DK_sum_FIN
#define IK_prod_INIT DK_prod_INIT
#define IK_prod_STEP(a, b, v) ((a) = (A)((uint64_t)(a) * (uint64_t)(v)))
#define IK_prod_FIN DK_sum_FIN
#define IK_l1s_INIT DK_INIT0
#define IK_l1s_STEP(a, b, v) ((a) = (A)((uint64_t)(a) + ((v) < 0 ? 0 - (uint64_t)(v) : (uint64_t)(v))))
#define IK_l1s_FIN DK_sum_FIN
#define IK_sumsq_INIT DK_INIT0
#define IK_sumsq_STEP(a, b, v) ((a) = (A)((uint64_t)(a) + (uint64_t)(v) * (uint64_t)(v)))
#define IK_sumsq_FIN DK_sum_FIN

/* One work unit: up to RED_CHUNK adjacent outputs of one row (one output when the
 * innermost dim is reduced). The reduced groups but the last are walked by flat index;
 * the last is the inner loop. */
#define DEF_RED(name, T, AA, LD, STORE, LO, HI, K) \
    static void name(const RedJob *j, int64_t u) \
    { \
        typedef AA A; \
        const T *x = j->x; \
        const RedGeom *g = &j->g; \
        int64_t oo = u / j->chunks, k0 = u % j->chunks * RED_CHUNK; \
        int64_t kn = CRUN_MIN(RED_CHUNK, g->inner - k0); \
        int64_t base = flat_offset(g->keep_dim, g->keep_str, g->n_keep, oo) + k0; \
        int last = g->n_red - 1; \
        int64_t rn = last >= 0 ? g->red_dim[last] : 1, rs = last >= 0 ? g->red_str[last] : 0; \
        int64_t n_pos = rn ? g->count / rn : 0; \
        T *out = (T *)j->y + oo * g->inner + k0; \
        if (kn == 1) { \
            A a; \
            double b; \
            K##_INIT(a, b, LO, HI); \
            for (int64_t p = 0; p < n_pos; p++) { \
                const T *src = x + base + flat_offset(g->red_dim, g->red_str, last, p); \
                for (int64_t r = 0; r < rn; r++) { \
                    A v = (A)LD(src[r * rs]); \
                    K##_STEP(a, b, v); \
                } \
            } \
            (void)b; \
            out[0] = STORE(K##_FIN(a, b, g->count)); \
            return; \
        } \
        A a[RED_CHUNK]; \
        double b[RED_CHUNK]; \
        (void)b; \
        for (int64_t k = 0; k < kn; k++) \
            K##_INIT(a[k], b[k], LO, HI); \
        for (int64_t p = 0; p < n_pos; p++) { \
            const T *src = x + base + flat_offset(g->red_dim, g->red_str, last, p); \
            for (int64_t r = 0; r < rn; r++) { \
                const T *row = src + r * rs; \
                for (int64_t k = 0; k < kn; k++) { \
                    A v = (A)LD(row[k]); \
                    K##_STEP(a[k], b[k], v); \
                } \
            } \
        } \
        for (int64_t k = 0; k < kn; k++) \
            out[k] = STORE(K##_FIN(a[k], b[k], g->count)); \
    }

#define DEF_RED_F(sfx, T, C, U, LD, ST, kind) \
    DEF_RED(red_##kind##_##sfx, T, double, LD, STF_##sfx, -INFINITY, INFINITY, DK_##kind)
#define DEF_RED_S(sfx, T, C, U, LD, ST, kind, K) \
    DEF_RED(red_##kind##_##sfx, T, int64_t, LD, (T), LO_##sfx, HI_##sfx, K)
#define DEF_RED_U(sfx, T, C, U, LD, ST, kind, K) DEF_RED(red_##kind##_##sfx, T, uint64_t, LD, (T), 0, HI_##sfx, K)
#define DEF_RED_D(sfx, T, C, U, LD, ST, kind) DEF_RED(red_##kind##_##sfx, T, double, LD, SAT_##sfx, 0, 0, DK_##kind)
#define RED_ENTRY(sfx, T, C, U, LD, ST, kind, ...) [DT_##sfx] = red_##kind##_##sfx,

/* Kinds computed in the integer domain for integer types ... */
#define INT_KIND(kind, sk, uk) \
    FOR_FLOAT_TYPES(DEF_RED_F, kind) \
    FOR_SIGNED_TYPES(DEF_RED_S, kind, IK_##sk) \
    FOR_UNSIGNED_TYPES(DEF_RED_U, kind, IK_##uk)
/* ... and those computed in double for every type. */
#define REAL_KIND(kind) FOR_FLOAT_TYPES(DEF_RED_F, kind) FOR_INT_TYPES(DEF_RED_D, kind)

INT_KIND(sum, sum, sum)
INT_KIND(mean, mean, mean)
INT_KIND(max, max, max)
INT_KIND(min, min, min)
INT_KIND(prod, prod, prod)
INT_KIND(l1, l1s, sum)
INT_KIND(sumsq, sumsq, sumsq)
REAL_KIND(l2)
REAL_KIND(logsum)
REAL_KIND(lse)

#define RED_ROW(kind) {FOR_NUMERIC_TYPES(RED_ENTRY, kind)}
static const RedFn red_table[RED_KINDS][DTYPE_SLOTS] = {
    [RED_SUM] = RED_ROW(sum),     [RED_MEAN] = RED_ROW(mean),     [RED_MAX] = RED_ROW(max),
    [RED_MIN] = RED_ROW(min),     [RED_PROD] = RED_ROW(prod),     [RED_L1] = RED_ROW(l1),
    [RED_L2] = RED_ROW(l2),       [RED_LOGSUM] = RED_ROW(logsum), [RED_LSE] = RED_ROW(lse),
    [RED_SUMSQ] = RED_ROW(sumsq),
};

typedef struct ReduceParams {
    RedKind kind;
    int64_t keepdims, noop_with_empty_axes;
    bool axes_input; /* axes come from input 1 (ReduceSum from opset 13, all from 18) */
    int n_axes;      /* attribute form */
    int64_t axes[CRUN_MAX_RANK];
} ReduceParams;

static crun_status parse_reduce(Node *n, Diag *d, RedKind kind)
{
    ReduceParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->kind = kind;
    p->axes_input = n->opset >= 18 || (kind == RED_SUM && n->opset >= 13);
    crun_status st = attr_get_int(n, "keepdims", 1, &p->keepdims, d);
    if (st == CRUN_OK && p->axes_input)
        st = attr_get_int(n, "noop_with_empty_axes", 0, &p->noop_with_empty_axes, d);
    if (st != CRUN_OK)
        return st;
    if (p->axes_input) {
        if (node_attr(n, "axes"))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'axes' is an input from opset %d",
                             kind == RED_SUM ? 13 : 18);
        return CRUN_OK;
    }
    if (n->n_in > 1 && n->in[1] >= 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "input 'axes' is an attribute before opset %d",
                         kind == RED_SUM ? 13 : 18);
    return attr_get_ints(n, "axes", p->axes, CRUN_MAX_RANK, &p->n_axes, d);
}

#define REDUCE_PARSER(fn, kind) \
    static crun_status fn(Node *n, Diag *d) { return parse_reduce(n, d, kind); }
REDUCE_PARSER(parse_reduce_sum, RED_SUM)
REDUCE_PARSER(parse_reduce_mean, RED_MEAN)
REDUCE_PARSER(parse_reduce_max, RED_MAX)
REDUCE_PARSER(parse_reduce_min, RED_MIN)
REDUCE_PARSER(parse_reduce_prod, RED_PROD)
REDUCE_PARSER(parse_reduce_l1, RED_L1)
REDUCE_PARSER(parse_reduce_l2, RED_L2)
REDUCE_PARSER(parse_reduce_logsum, RED_LOGSUM)
REDUCE_PARSER(parse_reduce_lse, RED_LSE)
REDUCE_PARSER(parse_reduce_sumsq, RED_SUMSQ)

/* Which dims of x are reduced. *noop: axes are empty and noop_with_empty_axes is set (the
 * output is the input). *unknown: the axes input's values are not known yet. */
static crun_status reduce_mask(const Node *n, Diag *d, const ReduceParams *p, const Tensor *x, const Tensor *at,
                               bool *mask, bool *noop, bool *unknown)
{
    int64_t axes[CRUN_MAX_RANK];
    int n_axes = p->n_axes;
    *noop = *unknown = false;
    if (p->axes_input) {
        n_axes = 0;
        if (at) {
            if (at->dtype != CRUN_DTYPE_INT64 || at->rank > 1)
                return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "input 'axes' must be a 1-D int64 tensor");
            int64_t na = tensor_numel(at);
            if (na > CRUN_MAX_RANK || (na > x->rank && na > 0))
                return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "input 'axes' has %lld values for rank %d",
                                 (long long)na, x->rank);
            if (na && !at->data) {
                *unknown = true;
                return CRUN_OK;
            }
            n_axes = (int)na;
            if (na)
                memcpy(axes, at->data, (size_t)na * sizeof *axes);
        }
        if (n_axes == 0 && p->noop_with_empty_axes)
            *noop = true;
    } else {
        memcpy(axes, p->axes, sizeof axes);
    }
    for (int i = 0; i < x->rank; i++)
        mask[i] = n_axes == 0 && !*noop;
    for (int i = 0; i < n_axes; i++) {
        int a = axis_normalize(axes[i], x->rank);
        if (a < 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "axis %lld is out of range for rank %d",
                             (long long)axes[i], x->rank);
        if (mask[a])
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "axis %lld appears twice", (long long)axes[i]);
        mask[a] = true;
    }
    return CRUN_OK;
}

static crun_status reduce_infer(InferCtx *c)
{
    const ReduceParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, (unsigned)x->dtype < DTYPE_SLOTS && red_table[p->kind][x->dtype], "type %s is not supported",
               dtype_name(x->dtype));
    bool mask[CRUN_MAX_RANK], noop, unknown;
    crun_status st = reduce_mask(c->node, c->d, p, x, c->n_in > 1 ? c->in[1] : NULL, mask, &noop, &unknown);
    if (st != CRUN_OK)
        return st;
    if (unknown) {
        c->needs_data = true;
        return CRUN_OK;
    }
    int64_t dims[CRUN_MAX_RANK];
    int rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!mask[i])
            dims[rank++] = x->dims[i];
        else if (p->keepdims)
            dims[rank++] = 1;
    }
    out_set(c->out[0], x->dtype, rank, dims);
    return CRUN_OK;
}

static int64_t reduce_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(in[0]);
}

static void red_task(void *ctx, int64_t t, int thread)
{
    const RedJob *j = ctx;
    int64_t end = CRUN_MIN(j->n_units, (t + 1) * j->per_task);
    for (int64_t u = t * j->per_task; u < end; u++)
        j->fn(j, u);
}

static crun_status reduce_run(KernelCtx *k)
{
    const ReduceParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    bool mask[CRUN_MAX_RANK], noop, unknown;
    crun_status st = reduce_mask(k->node, k->d, p, x, k->n_in > 1 ? k->in[1] : NULL, mask, &noop, &unknown);
    if (st != CRUN_OK)
        return st;
    if (noop) {
        if (y->data != x->data && tensor_bytes(x))
            memcpy(y->data, x->data, tensor_bytes(x));
        return CRUN_OK;
    }
    if (tensor_numel(y) == 0)
        return CRUN_OK;
    RedJob j = {.x = x->data, .y = y->data, .fn = red_table[p->kind][x->dtype]};
    red_geom(x->dims, x->rank, mask, &j.g);
    j.chunks = (j.g.inner + RED_CHUNK - 1) / RED_CHUNK;
    int64_t n_outer = shape_numel(j.g.keep_dim, j.g.n_keep);
    j.n_units = n_outer * j.chunks;
    int64_t n_tasks = group_units(j.n_units, j.g.count * CRUN_MIN(RED_CHUNK, j.g.inner), &j.per_task);
    pool_for(k->pool, n_tasks, red_task, &j);
    return CRUN_OK;
}

static const KernelVariant reduce_kernels[] = {{"reduce_ref", ISA_SCALAR, NULL, NULL, reduce_run, NULL}, {0}};

#define REDUCE_OP(id, parse) \
    const OpDesc op_##id = {"", #id, 1, 2, 1, 1, 0, parse, reduce_infer, reduce_flops, reduce_kernels};
REDUCE_OP(ReduceSum, parse_reduce_sum)
REDUCE_OP(ReduceMean, parse_reduce_mean)
REDUCE_OP(ReduceMax, parse_reduce_max)
REDUCE_OP(ReduceMin, parse_reduce_min)
REDUCE_OP(ReduceProd, parse_reduce_prod)
REDUCE_OP(ReduceL1, parse_reduce_l1)
REDUCE_OP(ReduceL2, parse_reduce_l2)
REDUCE_OP(ReduceLogSum, parse_reduce_logsum)
REDUCE_OP(ReduceLogSumExp, parse_reduce_lse)
REDUCE_OP(ReduceSumSquare, parse_reduce_sumsq)

/* ==== ops along one axis: the input seen as [outer, len, inner] ==== */

typedef struct AxisParams {
    int64_t axis, keepdims, select_last, largest, sorted, k;
    int64_t exclusive, reverse;
} AxisParams;

static void axis_split(const Tensor *x, int axis, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = shape_numel(x->dims, axis);
    *len = x->rank ? x->dims[axis] : 1;
    *inner = x->rank ? shape_numel(x->dims + axis + 1, x->rank - axis - 1) : 1;
}

/* ---- ArgMax, ArgMin ---- */

static crun_status parse_arg(Node *n, Diag *d)
{
    AxisParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "axis", 0, &p->axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "keepdims", 1, &p->keepdims, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "select_last_index", 0, &p->select_last, d);
    return st;
}

typedef struct ArgJob ArgJob;
typedef void (*ArgFn)(const ArgJob *j, int64_t unit);

struct ArgJob {
    const void *x;
    int64_t *y;
    int64_t len, inner, chunks, n_units, per_task;
    bool last; /* select_last_index */
    ArgFn fn;
};

/* better(v, best): v replaces the best so far. NaN counts as the extreme (numpy's choice):
 * the first NaN wins, or the last with select_last_index. */
#define DEF_ARG(name, T, C, LD, GT, GE, ISNAN) \
    static void name(const ArgJob *j, int64_t u) \
    { \
        const T *x = j->x; \
        int64_t o = u / j->chunks, k0 = u % j->chunks * RED_CHUNK; \
        int64_t kn = CRUN_MIN(RED_CHUNK, j->inner - k0); \
        const T *src = x + o * j->len * j->inner + k0; \
        C best[RED_CHUNK]; \
        int64_t idx[RED_CHUNK]; \
        for (int64_t k = 0; k < kn; k++) { \
            best[k] = LD(src[k]); \
            idx[k] = 0; \
        } \
        for (int64_t r = 1; r < j->len; r++) { \
            const T *row = src + r * j->inner; \
            for (int64_t k = 0; k < kn; k++) { \
                C v = LD(row[k]); \
                bool better = j->last ? v GE best[k] || ISNAN(v) : v GT best[k] || (ISNAN(v) && !ISNAN(best[k])); \
                if (better) { \
                    best[k] = v; \
                    idx[k] = r; \
                } \
            } \
        } \
        memcpy(j->y + o * j->inner + k0, idx, (size_t)kn * sizeof *idx); \
    }
#define NO_NAN(v) 0
#define DEF_ARG_F(sfx, T, C, U, LD, ST, op, GT, GE) DEF_ARG(op##_##sfx, T, C, LD, GT, GE, isnan)
#define DEF_ARG_I(sfx, T, C, U, LD, ST, op, GT, GE) DEF_ARG(op##_##sfx, T, C, LD, GT, GE, NO_NAN)
#define ARG_ENTRY(sfx, T, C, U, LD, ST, op, ...) [DT_##sfx] = op##_##sfx,

FOR_FLOAT_TYPES(DEF_ARG_F, argmax, >, >=)
FOR_INT_TYPES(DEF_ARG_I, argmax, >, >=)
FOR_FLOAT_TYPES(DEF_ARG_F, argmin, <, <=)
FOR_INT_TYPES(DEF_ARG_I, argmin, <, <=)
static const ArgFn argmax_fns[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(ARG_ENTRY, argmax)};
static const ArgFn argmin_fns[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(ARG_ENTRY, argmin)};

static crun_status arg_infer(InferCtx *c)
{
    const AxisParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, dtype_is_float(x->dtype) || dtype_is_int(x->dtype), "type %s is not supported",
               dtype_name(x->dtype));
    int axis = axis_normalize(p->axis, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    int64_t dims[CRUN_MAX_RANK];
    int rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != axis)
            dims[rank++] = x->dims[i];
        else if (p->keepdims)
            dims[rank++] = 1;
    }
    NODE_CHECK(c, x->dims[axis] > 0 || shape_numel(dims, rank) == 0, "cannot reduce the empty axis %d", axis);
    out_set(c->out[0], CRUN_DTYPE_INT64, rank, dims);
    return CRUN_OK;
}

static void arg_task(void *ctx, int64_t t, int thread)
{
    const ArgJob *j = ctx;
    int64_t end = CRUN_MIN(j->n_units, (t + 1) * j->per_task);
    for (int64_t u = t * j->per_task; u < end; u++)
        j->fn(j, u);
}

static crun_status arg_run_any(KernelCtx *k, const ArgFn *fns)
{
    const AxisParams *p = k->params;
    const Tensor *x = k->in[0];
    if (tensor_numel(k->out[0]) == 0)
        return CRUN_OK;
    int64_t outer;
    ArgJob j = {.x = x->data, .y = k->out[0]->data, .last = p->select_last != 0, .fn = fns[x->dtype]};
    axis_split(x, axis_normalize(p->axis, x->rank), &outer, &j.len, &j.inner);
    j.chunks = (j.inner + RED_CHUNK - 1) / RED_CHUNK;
    j.n_units = outer * j.chunks;
    int64_t n_tasks = group_units(j.n_units, j.len * CRUN_MIN(RED_CHUNK, j.inner), &j.per_task);
    pool_for(k->pool, n_tasks, arg_task, &j);
    return CRUN_OK;
}

static crun_status argmax_run(KernelCtx *k) { return arg_run_any(k, argmax_fns); }
static crun_status argmin_run(KernelCtx *k) { return arg_run_any(k, argmin_fns); }

static const KernelVariant argmax_kernels[] = {{"argmax_ref", ISA_SCALAR, NULL, NULL, argmax_run, NULL}, {0}};
static const KernelVariant argmin_kernels[] = {{"argmin_ref", ISA_SCALAR, NULL, NULL, argmin_run, NULL}, {0}};
const OpDesc op_ArgMax = {"", "ArgMax", 1, 1, 1, 1, 0, parse_arg, arg_infer, reduce_flops, argmax_kernels};
const OpDesc op_ArgMin = {"", "ArgMin", 1, 1, 1, 1, 0, parse_arg, arg_infer, reduce_flops, argmin_kernels};

/* ---- CumSum: y[i] = sum of x[j] for j <= i (j < i exclusive; j >= i / j > i reversed) ---- */

static crun_status parse_cumsum(Node *n, Diag *d)
{
    AxisParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "exclusive", 0, &p->exclusive, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "reverse", 0, &p->reverse, d);
    return st;
}

typedef struct CumJob CumJob;
typedef void (*CumFn)(const CumJob *j, int64_t unit);

struct CumJob {
    const void *x;
    void *y;
    int64_t len, inner, chunks, n_units, per_task;
    bool exclusive, reverse;
    CumFn fn;
};

/* The output is its own accumulator: y[r] = y[r - 1] + x[r] (or x[r - 1] when exclusive),
 * walking r backwards when reversed. ADD(a, b) adds two compute values. */
#define DEF_CUM(name, T, C, LD, ST, ADD) \
    static void name(const CumJob *j, int64_t u) \
    { \
        int64_t o = u / j->chunks, k0 = u % j->chunks * RED_CHUNK; \
        int64_t kn = CRUN_MIN(RED_CHUNK, j->inner - k0); \
        const T *x = (const T *)j->x + o * j->len * j->inner + k0; \
        T *y = (T *)j->y + o * j->len * j->inner + k0; \
        int64_t step = j->reverse ? -j->inner : j->inner; \
        int64_t first = j->reverse ? (j->len - 1) * j->inner : 0; \
        for (int64_t k = 0; k < kn; k++) \
            y[first + k] = j->exclusive ? ST((C)0) : x[first + k]; \
        for (int64_t r = 1; r < j->len; r++) { \
            int64_t cur = first + r * step, prev = cur - step, src = j->exclusive ? prev : cur; \
            for (int64_t k = 0; k < kn; k++) \
                y[cur + k] = ST(ADD(LD(y[prev + k]), LD(x[src + k]))); \
        } \
    }
#define ADD_F(a, b) ((a) + (b))
#define DEF_CUM_F(sfx, T, C, U, LD, ST, ...) DEF_CUM(cumsum_##sfx, T, C, LD, ST, ADD_F)
#define DEF_CUM_I(sfx, T, C, U, LD, ST, ...) \
    static inline T cum_add_##sfx(T a, T b) { return (T)((U)a + (U)b); } \
    DEF_CUM(cumsum_##sfx, T, C, LD, ST, cum_add_##sfx)
#define CUM_ENTRY(sfx, T, C, U, LD, ST, ...) [DT_##sfx] = cumsum_##sfx,
FOR_FLOAT_TYPES(DEF_CUM_F, 0)
FOR_INT_TYPES(DEF_CUM_I, 0)
static const CumFn cumsum_fns[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(CUM_ENTRY, 0)};

/* The axis input: one int32/int64 value (a scalar or a 1-element 1-D tensor). *axis is
 * -1 while unknown. */
static crun_status cumsum_axis(const Node *n, Diag *d, const Tensor *at, const Tensor *x, int *axis,
                               crun_status bad)
{
    *axis = -1;
    if ((at->dtype != CRUN_DTYPE_INT64 && at->dtype != CRUN_DTYPE_INT32) || at->rank > 1 || tensor_numel(at) != 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "input 'axis' must hold one int32 or int64 value");
    if (!at->data)
        return CRUN_OK;
    int64_t a = tensor_get_int(at, 0);
    *axis = axis_normalize(a, x->rank);
    if (*axis < 0)
        return node_fail(n, d, bad, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    return CRUN_OK;
}

static crun_status cumsum_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, (unsigned)x->dtype < DTYPE_SLOTS && cumsum_fns[x->dtype], "type %s is not supported",
               dtype_name(x->dtype));
    NODE_CHECK(c, x->rank >= 1, "input must have rank >= 1");
    int axis;
    crun_status st = cumsum_axis(c->node, c->d, c->in[1], x, &axis, CRUN_ERR_INVALID_MODEL);
    if (st != CRUN_OK)
        return st;
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

static void cum_task(void *ctx, int64_t t, int thread)
{
    const CumJob *j = ctx;
    int64_t end = CRUN_MIN(j->n_units, (t + 1) * j->per_task);
    for (int64_t u = t * j->per_task; u < end; u++)
        j->fn(j, u);
}

static crun_status cumsum_run(KernelCtx *k)
{
    const AxisParams *p = k->params;
    const Tensor *x = k->in[0];
    int axis;
    crun_status st = cumsum_axis(k->node, k->d, k->in[1], x, &axis, CRUN_ERR_RUNTIME);
    if (st != CRUN_OK)
        return st;
    if (tensor_numel(x) == 0)
        return CRUN_OK;
    int64_t outer;
    CumJob j = {.x = x->data, .y = k->out[0]->data, .exclusive = p->exclusive != 0, .reverse = p->reverse != 0,
                .fn = cumsum_fns[x->dtype]};
    axis_split(x, axis, &outer, &j.len, &j.inner);
    j.chunks = (j.inner + RED_CHUNK - 1) / RED_CHUNK;
    j.n_units = outer * j.chunks;
    int64_t n_tasks = group_units(j.n_units, j.len * CRUN_MIN(RED_CHUNK, j.inner), &j.per_task);
    pool_for(k->pool, n_tasks, cum_task, &j);
    return CRUN_OK;
}

static const KernelVariant cumsum_kernels[] = {{"cumsum_ref", ISA_SCALAR, NULL, NULL, cumsum_run, NULL}, {0}};
const OpDesc op_CumSum = {"", "CumSum", 2, 2, 1, 1, 0, parse_cumsum, cumsum_infer, reduce_flops, cumsum_kernels};

/* ---- TopK: the k largest (or smallest) along an axis, ties to the lower index ----
 *
 * Each value maps to an unsigned key with the same order (floats through their double
 * bits, NaN above +inf as in numpy's sort, -0 equal to +0), so one selection works for
 * every type: a bounded heap of the k best (key, index) pairs, O(n log k) at worst and
 * about n comparisons when few keys displace the heap's worst. */

static crun_status parse_topk(Node *n, Diag *d)
{
    AxisParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "axis", -1, &p->axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "largest", 1, &p->largest, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "sorted", 1, &p->sorted, d);
    if (st != CRUN_OK)
        return st;
    if (n->opset < 10) {
        if (!node_attr(n, "k"))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'k' is required before opset 10");
        st = attr_get_int(n, "k", 0, &p->k, d);
        if (st == CRUN_OK && p->k < 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "k = %lld is negative", (long long)p->k);
    }
    return st;
}

/* k from the attribute (opset < 10) or input 1; -1 while unknown. */
static crun_status topk_k(const Node *n, Diag *d, const AxisParams *p, const Tensor *kt, int64_t *k)
{
    *k = p->k;
    if (n->opset < 10)
        return CRUN_OK;
    if (!kt || kt->dtype != CRUN_DTYPE_INT64 || kt->rank > 1 || tensor_numel(kt) != 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "input 'K' must be a 1-D int64 tensor of one value");
    *k = kt->data ? ((const int64_t *)kt->data)[0] : -1;
    if (kt->data && *k < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "K = %lld is negative", (long long)*k);
    return CRUN_OK;
}

static crun_status topk_infer(InferCtx *c)
{
    const AxisParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, dtype_is_float(x->dtype) || dtype_is_int(x->dtype), "type %s is not supported",
               dtype_name(x->dtype));
    int axis = axis_normalize(p->axis, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    int64_t k;
    crun_status st = topk_k(c->node, c->d, p, c->n_in > 1 ? c->in[1] : NULL, &k);
    if (st != CRUN_OK)
        return st;
    if (k < 0) {
        c->needs_data = true;
        return CRUN_OK;
    }
    NODE_CHECK(c, k <= x->dims[axis], "k = %lld is larger than the axis (%lld)", (long long)k,
               (long long)x->dims[axis]);
    int64_t dims[CRUN_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    out_set(c->out[0], x->dtype, x->rank, dims);
    out_set(c->out[1], CRUN_DTYPE_INT64, x->rank, dims);
    return CRUN_OK;
}

typedef struct TopKey {
    uint64_t key;
    int64_t idx;
} TopKey;

typedef struct TopJob {
    const Tensor *x;
    Tensor *v, *i;
    int64_t len, inner, k;
    bool largest;
    TopKey *ws; /* len pairs per thread */
} TopJob;

static inline uint64_t key_of_double(double v)
{
    if (v != v)
        v = NAN;
    else if (v == 0)
        v = 0.0; /* -0 sorts with +0 */
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b >> 63 ? ~b : b | ((uint64_t)1 << 63);
}

/* Keys of one row (len elements, stride inner, starting at element first). */
static void topk_keys(const Tensor *x, int64_t first, int64_t len, int64_t inner, TopKey *out)
{
    const char *base = x->data;
#define KEYS(T, expr) \
    do { \
        const T *s = (const T *)base + first; \
        for (int64_t r = 0; r < len; r++) { \
            T e = s[r * inner]; \
            out[r] = (TopKey){(expr), r}; \
        } \
    } while (0)
    switch (x->dtype) {
    case CRUN_DTYPE_FLOAT: KEYS(float, key_of_double(e)); break;
    case CRUN_DTYPE_DOUBLE: KEYS(double, key_of_double(e)); break;
    case CRUN_DTYPE_FLOAT16: KEYS(uint16_t, key_of_double(fp16_to_f32(e))); break;
    case CRUN_DTYPE_BFLOAT16: KEYS(uint16_t, key_of_double(bf16_to_f32(e))); break;
    case CRUN_DTYPE_INT8: KEYS(int8_t, ((uint64_t)(int64_t)e ^ ((uint64_t)1 << 63))); break;
    case CRUN_DTYPE_INT16: KEYS(int16_t, ((uint64_t)(int64_t)e ^ ((uint64_t)1 << 63))); break;
    case CRUN_DTYPE_INT32: KEYS(int32_t, ((uint64_t)(int64_t)e ^ ((uint64_t)1 << 63))); break;
    case CRUN_DTYPE_INT64: KEYS(int64_t, ((uint64_t)e ^ ((uint64_t)1 << 63))); break;
    case CRUN_DTYPE_UINT8: KEYS(uint8_t, e); break;
    case CRUN_DTYPE_UINT16: KEYS(uint16_t, e); break;
    case CRUN_DTYPE_UINT32: KEYS(uint32_t, e); break;
    default: KEYS(uint64_t, e); break;
    }
#undef KEYS
}

/* a goes before b in the output. */
static inline bool top_before(const TopKey *a, const TopKey *b, bool largest)
{
    if (a->key != b->key)
        return largest ? a->key > b->key : a->key < b->key;
    return a->idx < b->idx;
}

/* Restores a heap whose root is the element that goes last (the worst kept so far). */
static void top_sift(TopKey *h, int64_t n, int64_t i, bool largest)
{
    for (;;) {
        int64_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && top_before(&h[worst], &h[l], largest))
            worst = l;
        if (r < n && top_before(&h[worst], &h[r], largest))
            worst = r;
        if (worst == i)
            return;
        TopKey t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* The first k of the row's keys make a worst-at-root heap; every later key that goes
 * before the root replaces it; heap-sorting the k leaves them best first. */
static void topk_row(void *ctx, int64_t t, int thread)
{
    const TopJob *j = ctx;
    TopKey *h = j->ws + (int64_t)thread * j->len;
    int64_t o = t / j->inner, in = t % j->inner;
    topk_keys(j->x, o * j->len * j->inner + in, j->len, j->inner, h);
    for (int64_t i = j->k / 2 - 1; i >= 0; i--)
        top_sift(h, j->k, i, j->largest);
    for (int64_t i = j->k; i < j->len; i++)
        if (top_before(&h[i], &h[0], j->largest)) {
            h[0] = h[i];
            top_sift(h, j->k, 0, j->largest);
        }
    for (int64_t n = j->k - 1; n > 0; n--) {
        TopKey w = h[0];
        h[0] = h[n];
        h[n] = w;
        top_sift(h, n, 0, j->largest);
    }
    size_t es = dtype_size(j->x->dtype);
    const char *src = (const char *)j->x->data + (size_t)(o * j->len * j->inner + in) * es;
    char *vals = (char *)j->v->data + (size_t)(o * j->k * j->inner + in) * es;
    int64_t *idx = (int64_t *)j->i->data + o * j->k * j->inner + in;
    for (int64_t r = 0; r < j->k; r++) {
        memcpy(vals + (size_t)(r * j->inner) * es, src + (size_t)(h[r].idx * j->inner) * es, es);
        idx[r * j->inner] = h[r].idx;
    }
}

static int64_t topk_len(const PrepCtx *c)
{
    const AxisParams *p = c->params;
    return c->in[0]->dims[axis_normalize(p->axis, c->in[0]->rank)];
}

static crun_status topk_prepare(PrepCtx *c)
{
    c->ws_bytes = (size_t)c->n_threads * (size_t)topk_len(c) * sizeof(TopKey);
    return CRUN_OK;
}

static crun_status topk_run(KernelCtx *k)
{
    const AxisParams *p = k->params;
    const Tensor *x = k->in[0];
    int64_t outer;
    TopJob j = {.x = x, .v = k->out[0], .i = k->out[1], .largest = p->largest != 0, .ws = k->ws};
    axis_split(x, axis_normalize(p->axis, x->rank), &outer, &j.len, &j.inner);
    j.k = k->out[0]->dims[axis_normalize(p->axis, x->rank)];
    if (j.k == 0 || tensor_numel(x) == 0)
        return CRUN_OK;
    pool_for(k->pool, outer * j.inner, topk_row, &j);
    return CRUN_OK;
}

static const KernelVariant topk_kernels[] = {{"topk_ref", ISA_SCALAR, NULL, topk_prepare, topk_run, NULL}, {0}};
const OpDesc op_TopK = {"", "TopK", 1, 2, 2, 2, 0, parse_topk, topk_infer, reduce_flops, topk_kernels};
