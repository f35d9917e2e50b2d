/* math_variadic.c - elementwise ops over one or more inputs with multidirectional
 * broadcasting: Max, Min, Sum, Mean.
 *
 * Before opset 8 the inputs had to have equal shapes; broadcasting gives the same result
 * there, so one rule serves every opset (opset 1's consumed_inputs is ignored). The
 * output is folded input by input: out = in0 op in1, then out = out op in2, ... so each
 * pass is a two-input broadcast loop; the output never shares memory with an input (no
 * OPF_INPLACE), since a later input would be read after the first pass overwrote it. */
#include <string.h>

#include "ops/dtype_loops.h"
#include "ops/math_common.h"

/* Float max/min propagate NaN, as numpy.maximum/minimum do. */
#define DEF_FOLD(sfx, TT, CC, UU, LD, ST, name, ...) \
    static void name##_##sfx(void *out, const void *const *in, const int64_t *s, int64_t n, const void *arg) \
    { \
        typedef TT T; \
        typedef CC C; \
        const float nf = arg ? *(const float *)arg : 1.0f; /* Mean's input count */ \
        (void)nf; \
        MATH_BIN_LOOP(T, LD, ST, __VA_ARGS__); \
    }
#define TABLE_ENTRY(sfx, T, C, U, LD, ST, name) [DT_##sfx] = name##_##sfx,

FOR_FLOAT_TYPES(DEF_FOLD, max, x > y || x != x ? x : y)
FOR_INT_TYPES(DEF_FOLD, max, x > y ? x : y)
FOR_FLOAT_TYPES(DEF_FOLD, min, x < y || x != x ? x : y)
FOR_INT_TYPES(DEF_FOLD, min, x < y ? x : y)
FOR_FLOAT_TYPES(DEF_FOLD, sum, x + y)
/* The last pass of Mean: add and divide by the count (in the compute type, as numpy's
 * (a + b + c) / 3 does). */
FOR_FLOAT_TYPES(DEF_FOLD, meanlast, (x + y) / (C)nf)

static const BcastLoop max_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, max)};
static const BcastLoop min_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(TABLE_ENTRY, min)};
static const BcastLoop sum_loops[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(TABLE_ENTRY, sum)};
static const BcastLoop meanlast_loops[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(TABLE_ENTRY, meanlast)};

static crun_status variadic_infer(InferCtx *c)
{
    const Tensor *x0 = c->in[0];
    NODE_CHECK(c, x0, "input 0 is missing");
    int64_t dims[CRUN_MAX_RANK];
    int rank = x0->rank;
    memcpy(dims, x0->dims, sizeof dims);
    for (int i = 1; i < c->n_in; i++) {
        const Tensor *x = c->in[i];
        NODE_CHECK(c, x, "input %d is missing", i);
        NODE_CHECK(c, x->dtype == x0->dtype, "input %d has type %s, input 0 has %s", i, dtype_name(x->dtype),
                   dtype_name(x0->dtype));
        int64_t nd[CRUN_MAX_RANK];
        int nr;
        char sa[96], sb[96];
        NODE_CHECK(c, broadcast_shape(dims, rank, x->dims, x->rank, nd, &nr),
                   "input %d %s does not broadcast with the other inputs' %s", i,
                   shape_str(x->dims, x->rank, sb, sizeof sb), shape_str(dims, rank, sa, sizeof sa));
        memcpy(dims, nd, sizeof(int64_t) * (size_t)nr);
        rank = nr;
    }
    out_set(c->out[0], x0->dtype, rank, dims);
    return CRUN_OK;
}

static int64_t variadic_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(out[0]) * CRUN_MAX(1, n->n_in - 1);
}

/* Folds the inputs into the output with loop; Mean (last != NULL) ends with last. */
static void fold_run(KernelCtx *k, BcastLoop loop, BcastLoop last)
{
    Tensor *o = k->out[0];
    if (k->n_in == 1) {
        memcpy(o->data, k->in[0]->data, tensor_bytes(o));
        return;
    }
    float nf = (float)k->n_in;
    for (int i = 1; i < k->n_in; i++) {
        const Tensor *in[2] = {i == 1 ? k->in[0] : o, k->in[i]};
        bool end = last && i == k->n_in - 1;
        BcastPlan bp;
        bcast_plan(&bp, o, in, 2);
        bcast_run(&bp, o, in, end ? last : loop, end ? &nf : NULL, k->pool);
    }
}

static crun_status fold_op_run(KernelCtx *k)
{
    const BcastLoop *loops = k->kdata;
    fold_run(k, loops[k->in[0]->dtype], NULL);
    return CRUN_OK;
}

static crun_status mean_run(KernelCtx *k)
{
    crun_dtype t = k->in[0]->dtype;
    fold_run(k, sum_loops[t], meanlast_loops[t]);
    return CRUN_OK;
}

#define VARIADIC_OP(id, name, loops, run) \
    static const KernelVariant id##_kernels[] = { \
        {"fold_ref", ISA_SCALAR, math_loops_have_dtype, NULL, run, loops}, {0}}; \
    const OpDesc op_##id = {"", name, 1, -1, 1, 1, 0, NULL, variadic_infer, variadic_flops, id##_kernels};

VARIADIC_OP(Max, "Max", max_loops, fold_op_run)
VARIADIC_OP(Min, "Min", min_loops, fold_op_run)
VARIADIC_OP(Sum, "Sum", sum_loops, fold_op_run)
VARIADIC_OP(Mean, "Mean", sum_loops, mean_run)
