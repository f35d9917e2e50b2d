/* test_reduce.c - reductions, normalisations, softmax-like ops and losses (reduce.c,
 * norm.c, softmax.c, loss.c) against hand-checked values: every opset form, edge cases
 * the conformance data does not reach (empty reductions, integer types, NaN, ties, the
 * chunked paths), and the errors bad attributes (CRUN_ERR_INVALID_MODEL) and bad data
 * (CRUN_ERR_RUNTIME) must give. */
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "noderun.h"

#define F32 CRUN_DTYPE_FLOAT
#define F64 CRUN_DTYPE_DOUBLE
#define F16 CRUN_DTYPE_FLOAT16
#define I64 CRUN_DTYPE_INT64
#define I32 CRUN_DTYPE_INT32
#define I8 CRUN_DTYPE_INT8
#define U8 CRUN_DTYPE_UINT8

/* Arg initialisers: a graph input bound at run time, or a constant. */
#define IN(...) {__VA_ARGS__, false}
#define CONST(...) {__VA_ARGS__, true}
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static size_t numel(const crun_tensor *t) { return t->size_bytes / crun_dtype_size(t->dtype); }

static void print_shape(const crun_tensor *t)
{
    fprintf(stderr, "  got %s [", crun_dtype_name(t->dtype));
    for (int i = 0; i < t->rank; i++)
        fprintf(stderr, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    fprintf(stderr, "]\n");
}

/* Element i of an integer tensor as int64 (uint64 wraps). */
static int64_t elem_int(const crun_tensor *t, size_t i)
{
    switch (t->dtype) {
    case CRUN_DTYPE_INT64: return ((const int64_t *)t->data)[i];
    case CRUN_DTYPE_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case CRUN_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    case CRUN_DTYPE_UINT32: return ((const uint32_t *)t->data)[i];
    case CRUN_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case CRUN_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    default: return INT64_MIN;
    }
}

static bool ints_are(const crun_tensor *t, crun_dtype dt, int rank, const int64_t *dims, const int64_t *want,
                     size_t n)
{
    if (t->dtype != dt || !shape_is(t, rank, dims) || numel(t) != n) {
        print_shape(t);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (elem_int(t, i) != want[i]) {
            fprintf(stderr, "  element %zu = %lld, expected %lld\n", i, (long long)elem_int(t, i), (long long)want[i]);
            return false;
        }
    return true;
}

/* Float32 output against want with |got - want| <= tol (NaN equals NaN, inf equals inf). */
static bool floats_are(const crun_tensor *t, int rank, const int64_t *dims, const float *want, size_t n, double tol)
{
    if (t->dtype != F32 || !shape_is(t, rank, dims) || numel(t) != n) {
        print_shape(t);
        return false;
    }
    const float *y = t->data;
    for (size_t i = 0; i < n; i++) {
        bool same = isnan(y[i]) ? isnan(want[i]) : y[i] == want[i] || fabs((double)y[i] - (double)want[i]) <= tol;
        if (!same) {
            fprintf(stderr, "  element %zu = %.9g, expected %.9g\n", i, y[i], want[i]);
            return false;
        }
    }
    return true;
}

/* ==== Reduce* ==== */

/* A one-input reduction of a float [2, 3] tensor with axes as attribute. */
static void reduce_attr_model(Run *r, Arg *x, int opset, const char *op, const int64_t *axes, int n_axes,
                              int keepdims)
{
    node_model(r, opset, op, x, 1, NULL);
    if (axes)
        ob_attr_ints(r->b, r->node, "axes", axes, n_axes);
    if (keepdims >= 0)
        ob_attr_int(r->b, r->node, "keepdims", keepdims);
}

TEST(reduce_kinds_over_last_axis)
{
    float xv[6] = {1, -2, 3, 0.5f, 4, -1};
    struct {
        const char *op;
        float want[2];
    } cases[] = {
        {"ReduceSum", {2, 3.5f}},
        {"ReduceMean", {2.0f / 3, 3.5f / 3}},
        {"ReduceMax", {3, 4}},
        {"ReduceMin", {-2, -1}},
        {"ReduceProd", {-6, -2}},
        {"ReduceL1", {6, 5.5f}},
        {"ReduceL2", {3.74165739f, 4.15331193f}},
        {"ReduceSumSquare", {14, 17.25f}},
        {"ReduceLogSumExp", {3.13284523f, 4.03626957f}},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        Arg x = IN("x", F32, 2, {2, 3}, xv);
        Run r;
        int64_t axes[1] = {-1}, od[2] = {2, 1};
        reduce_attr_model(&r, &x, 11, cases[c].op, axes, 1, -1);
        RCHECK_OK(&r, run(&r));
        CHECK_MSG(floats_are(&r.y[0], 2, od, cases[c].want, 2, 1e-5), "%s", cases[c].op);
        run_free(&r);
    }
}

TEST(reduce_log_sum_and_default_axes)
{
    float xv[6] = {1, 2, 3, 4, 5, 6};
    Arg x = IN("x", F32, 2, {2, 3}, xv);
    Run r;
    reduce_attr_model(&r, &x, 13, "ReduceLogSum", NULL, 0, 0);
    RCHECK_OK(&r, run(&r));
    float want = logf(21);
    RCHECK(&r, floats_are(&r.y[0], 0, NULL, &want, 1, 1e-6));
    run_free(&r);
    /* axes [0] keepdims 1 on opset 1 */
    int64_t axes[1] = {0}, od[2] = {1, 3};
    reduce_attr_model(&r, &x, 1, "ReduceLogSum", axes, 1, -1);
    RCHECK_OK(&r, run(&r));
    float w3[3] = {logf(5), logf(7), logf(9)};
    RCHECK(&r, floats_are(&r.y[0], 2, od, w3, 3, 1e-6));
    run_free(&r);
}

TEST(reduce_sum_axes_input_forms)
{
    float xv[6] = {1, 2, 3, 4, 5, 6};
    int64_t ax1[1] = {1}, none[1] = {0};
    /* constant axes input, keepdims 0 */
    Arg a1[2] = {IN("x", F32, 2, {2, 3}, xv), CONST("axes", I64, 1, {1}, ax1)};
    Run r;
    node_model(&r, 13, "ReduceSum", a1, 2, NULL);
    ob_attr_int(r.b, r.node, "keepdims", 0);
    RCHECK_OK(&r, run(&r));
    int64_t d2[1] = {2};
    float w1[2] = {6, 15};
    RCHECK(&r, floats_are(&r.y[0], 1, d2, w1, 2, 0));
    run_free(&r);
    /* axes bound at run time: the step is dynamic */
    Arg a2[2] = {IN("x", F32, 2, {2, 3}, xv), IN("axes", I64, 1, {1}, ax1)};
    node_model(&r, 13, "ReduceSum", a2, 2, NULL);
    RCHECK_OK(&r, run(&r));
    int64_t d21[2] = {2, 1};
    RCHECK(&r, floats_are(&r.y[0], 2, d21, w1, 2, 0));
    run_free(&r);
    /* empty axes: all axes, or no-op with noop_with_empty_axes */
    Arg a3[2] = {IN("x", F32, 2, {2, 3}, xv), CONST("axes", I64, 1, {0}, none)};
    node_model(&r, 13, "ReduceSum", a3, 2, NULL);
    RCHECK_OK(&r, run(&r));
    int64_t d11[2] = {1, 1};
    float all = 21;
    RCHECK(&r, floats_are(&r.y[0], 2, d11, &all, 1, 0));
    run_free(&r);
    node_model(&r, 13, "ReduceSum", a3, 2, NULL);
    ob_attr_int(r.b, r.node, "noop_with_empty_axes", 1);
    RCHECK_OK(&r, run(&r));
    int64_t d23[2] = {2, 3};
    RCHECK(&r, floats_are(&r.y[0], 2, d23, xv, 6, 0));
    run_free(&r);
    /* axes omitted with noop_with_empty_axes: the input */
    node_model(&r, 13, "ReduceSum", a3, 1, NULL);
    ob_attr_int(r.b, r.node, "noop_with_empty_axes", 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, floats_are(&r.y[0], 2, d23, xv, 6, 0));
    run_free(&r);
}

TEST(reduce_bad_axes_fail)
{
    float xv[6] = {0};
    Arg x = IN("x", F32, 2, {2, 3}, xv);
    Run r;
    int64_t dup[2] = {1, -1}, out[1] = {2};
    reduce_attr_model(&r, &x, 11, "ReduceMax", dup, 2, -1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    reduce_attr_model(&r, &x, 11, "ReduceMax", out, 1, -1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    /* ReduceSum 13 takes axes as an input only */
    reduce_attr_model(&r, &x, 13, "ReduceSum", out, 1, -1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    /* an axes input bound at run time that is out of range */
    int64_t bad[1] = {5};
    Arg a[2] = {IN("x", F32, 2, {2, 3}, xv), IN("axes", I64, 1, {1}, bad)};
    node_model(&r, 13, "ReduceSum", a, 2, NULL);
    crun_status st = run(&r);
    RCHECK(&r, st == CRUN_ERR_INVALID_MODEL || st == CRUN_ERR_RUNTIME);
    run_free(&r);
}

TEST(reduce_empty_set_gives_identities)
{
    struct {
        const char *op;
        float want;
    } cases[] = {
        {"ReduceSum", 0},          {"ReduceProd", 1},       {"ReduceMax", -INFINITY}, {"ReduceMin", INFINITY},
        {"ReduceMean", NAN},       {"ReduceL1", 0},         {"ReduceL2", 0},          {"ReduceSumSquare", 0},
        {"ReduceLogSum", -INFINITY}, {"ReduceLogSumExp", -INFINITY},
    };
    float dummy = 0;
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        Arg x = IN("x", F32, 2, {2, 0}, &dummy);
        Run r;
        int64_t axes[1] = {1}, od[2] = {2, 1};
        reduce_attr_model(&r, &x, 11, cases[c].op, axes, 1, -1);
        RCHECK_OK(&r, run(&r));
        float want[2] = {cases[c].want, cases[c].want};
        CHECK_MSG(floats_are(&r.y[0], 2, od, want, 2, 0), "%s", cases[c].op);
        run_free(&r);
    }
    /* integer Max/Min of nothing: the type's lowest / highest value */
    int32_t idummy = 0;
    Arg xi = IN("x", I32, 1, {0}, &idummy);
    Run r;
    int64_t d1[1] = {1}, lo = INT32_MIN, hi = INT32_MAX;
    reduce_attr_model(&r, &xi, 13, "ReduceMax", NULL, 0, -1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, ints_are(&r.y[0], I32, 1, d1, &lo, 1));
    run_free(&r);
    reduce_attr_model(&r, &xi, 13, "ReduceMin", NULL, 0, -1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, ints_are(&r.y[0], I32, 1, d1, &hi, 1));
    run_free(&r);
}

TEST(reduce_integer_types_wrap_and_truncate)
{
    int32_t xi[4] = {INT32_MAX, 1, -7, 2};
    Arg x = IN("x", I32, 2, {2, 2}, xi);
    Run r;
    int64_t axes[1] = {1}, od[1] = {2};
    struct {
        const char *op;
        int64_t want[2];
    } cases[] = {
        {"ReduceSum", {INT32_MIN, -5}},  /* wraps like int32 */
        {"ReduceMean", {1073741824, -2}}, /* (2^31 - 1 + 1) / 2; -5 / 2 truncates */
        {"ReduceProd", {INT32_MAX, -14}},
        {"ReduceMax", {INT32_MAX, 2}},
        {"ReduceMin", {1, -7}},
        {"ReduceL1", {INT32_MIN, 9}},
        {"ReduceSumSquare", {2, 53}}, /* (2^31-1)^2 + 1 = 2 mod 2^32 */
        {"ReduceL2", {INT32_MAX, 7}}, /* sqrt saturates; sqrt(53) = 7.28 truncates */
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        reduce_attr_model(&r, &x, 12, cases[c].op, axes, 1, 0);
        RCHECK_OK(&r, run(&r));
        CHECK_MSG(ints_are(&r.y[0], I32, 1, od, cases[c].want, 2), "%s", cases[c].op);
        run_free(&r);
    }
    uint8_t xu[4] = {200, 100, 3, 255};
    Arg xb = IN("x", U8, 1, {4}, xu);
    int64_t d1[1] = {1}, s = (200 + 100 + 3 + 255) % 256, mx = 255;
    reduce_attr_model(&r, &xb, 13, "ReduceSum", NULL, 0, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, ints_are(&r.y[0], U8, 1, d1, &s, 1));
    run_free(&r);
    reduce_attr_model(&r, &xb, 13, "ReduceMax", NULL, 0, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, ints_are(&r.y[0], U8, 1, d1, &mx, 1));
    run_free(&r);
}

TEST(reduce_logsumexp_is_stable_and_nan_propagates)
{
    float xv[6] = {1000, 1000, -INFINITY, -INFINITY, NAN, 1};
    Arg x = IN("x", F32, 2, {3, 2}, xv);
    Run r;
    int64_t axes[1] = {1}, od[1] = {3};
    reduce_attr_model(&r, &x, 13, "ReduceLogSumExp", axes, 1, 0);
    RCHECK_OK(&r, run(&r));
    float want[3] = {1000 + logf(2), -INFINITY, NAN};
    RCHECK(&r, floats_are(&r.y[0], 1, od, want, 3, 1e-3));
    run_free(&r);
    reduce_attr_model(&r, &x, 13, "ReduceMax", axes, 1, 0);
    RCHECK_OK(&r, run(&r));
    float wmax[3] = {1000, -INFINITY, NAN};
    RCHECK(&r, floats_are(&r.y[0], 1, od, wmax, 3, 0));
    run_free(&r);
}

/* Against a naive loop: every axes subset of a [3, 5, 70] tensor, so the chunked path
 * (innermost dim kept: chunks of 64 + a remainder of 6) and the strided paths all run;
 * the results are also the same with 1 and 2 threads. */
TEST(reduce_all_axes_subsets_match_naive)
{
    enum { A = 3, B = 5, C = 70 };
    static float xv[A * B * C];
    fill_random(xv, A * B * C, 7, -2, 2);
    int64_t dims[3] = {A, B, C};
    for (int mask = 1; mask < 8; mask++) {
        int64_t axes[3];
        int na = 0;
        for (int i = 0; i < 3; i++)
            if (mask >> i & 1)
                axes[na++] = i - 3; /* negative axes */
        static float want[A * B * C];
        static double acc[A * B * C];
        int64_t od[3];
        for (int i = 0; i < 3; i++)
            od[i] = mask >> i & 1 ? 1 : dims[i];
        memset(acc, 0, sizeof acc);
        for (int a = 0; a < A; a++)
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++) {
                    int o = ((mask & 1 ? 0 : a) * (int)od[1] + (mask & 2 ? 0 : b)) * (int)od[2] + (mask & 4 ? 0 : c);
                    double v = xv[(a * B + b) * C + c];
                    acc[o] += v * v;
                }
        int64_t n_out = od[0] * od[1] * od[2];
        for (int64_t i = 0; i < n_out; i++)
            want[i] = (float)acc[i];
        Arg x = IN("x", F32, 3, {A, B, C}, xv);
        Run r, r1;
        reduce_attr_model(&r, &x, 11, "ReduceSumSquare", axes, na, 1);
        RCHECK_OK(&r, run(&r));
        CHECK_MSG(floats_are(&r.y[0], 3, od, want, (size_t)n_out, 1e-3), "mask %d", mask);
        reduce_attr_model(&r1, &x, 11, "ReduceSumSquare", axes, na, 1);
        crun_status st = run_threads(&r1, 1);
        bool same = st == CRUN_OK && !memcmp(r1.y[0].data, r.y[0].data, r.y[0].size_bytes);
        run_free(&r1);
        RCHECK(&r, same);
        run_free(&r);
    }
}

TEST(reduce_mean_float16_and_double)
{
    uint16_t h[4] = {0x3c00, 0x4000, 0x4200, 0x4400}; /* 1 2 3 4 */
    Arg x = IN("x", F16, 1, {4}, h);
    Run r;
    reduce_attr_model(&r, &x, 13, "ReduceMean", NULL, 0, 0);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, r.y[0].dtype == F16 && r.y[0].rank == 0 && ((const uint16_t *)r.y[0].data)[0] == 0x4100); /* 2.5 */
    run_free(&r);
    double dv[3] = {1e300, 1e300, -1e300};
    Arg xd = IN("x", F64, 1, {3}, dv);
    reduce_attr_model(&r, &xd, 13, "ReduceMax", NULL, 0, 0);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, r.y[0].dtype == F64 && ((const double *)r.y[0].data)[0] == 1e300);
    run_free(&r);
}

/* ==== ArgMax, ArgMin ==== */

TEST(argmax_argmin_ties_last_index_and_keepdims)
{
    float xv[6] = {1, 3, 3, 2, 2, 0};
    Arg x = IN("x", F32, 2, {2, 3}, xv);
    struct {
        const char *op;
        int opset, keepdims, last;
        int64_t axis;
        int rank;
        int64_t od[2];
        int64_t want[3];
    } cases[] = {
        {"ArgMax", 11, 1, 0, 1, 2, {2, 1}, {1, 0}},
        {"ArgMax", 12, 1, 1, -1, 2, {2, 1}, {2, 1}},
        {"ArgMin", 1, 0, 0, 1, 1, {2}, {0, 2}},
        {"ArgMin", 13, 0, 1, 0, 1, {3}, {0, 1, 1}},
        {"ArgMax", 13, 0, 0, 0, 1, {3}, {1, 0, 0}},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        Run r;
        node_model(&r, cases[c].opset, cases[c].op, &x, 1, NULL);
        ob_attr_int(r.b, r.node, "axis", cases[c].axis);
        ob_attr_int(r.b, r.node, "keepdims", cases[c].keepdims);
        if (cases[c].last)
            ob_attr_int(r.b, r.node, "select_last_index", 1);
        RCHECK_OK(&r, run(&r));
        int n = (int)(cases[c].od[0] * (cases[c].rank > 1 ? cases[c].od[1] : 1));
        CHECK_MSG(ints_are(&r.y[0], I64, cases[c].rank, cases[c].od, cases[c].want, (size_t)n), "case %zu", c);
        run_free(&r);
    }
}

TEST(argmax_nan_wins_and_wide_inner)
{
    /* [2, 130]: axis 0 runs chunks of 64 + 64 + 2; column j has max in row j % 2, NaN in column 5 row 1 */
    static float xv[2 * 130];
    for (int j = 0; j < 130; j++) {
        xv[j] = j % 2 == 0 ? 1.0f : 0.0f;
        xv[130 + j] = j % 2 == 0 ? 0.0f : 1.0f;
    }
    xv[130 + 4] = NAN;
    Arg x = IN("x", F32, 2, {2, 130}, xv);
    Run r;
    node_model(&r, 13, "ArgMax", &x, 1, NULL);
    ob_attr_int(r.b, r.node, "keepdims", 0);
    RCHECK_OK(&r, run(&r));
    int64_t want[130], od[1] = {130};
    for (int j = 0; j < 130; j++)
        want[j] = j % 2;
    want[4] = 1;
    RCHECK(&r, ints_are(&r.y[0], I64, 1, od, want, 130));
    run_free(&r);
    int8_t xi[4] = {-5, 7, 7, -128};
    Arg x8 = IN("x", I8, 1, {4}, xi);
    node_model(&r, 13, "ArgMin", &x8, 1, NULL);
    RCHECK_OK(&r, run(&r));
    int64_t w = 3, d1[1] = {1};
    RCHECK(&r, ints_are(&r.y[0], I64, 1, d1, &w, 1));
    run_free(&r);
}

TEST(argmax_bad_axis_fails)
{
    float xv[2] = {0};
    Arg x = IN("x", F32, 1, {2}, xv);
    Run r;
    node_model(&r, 13, "ArgMax", &x, 1, NULL);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ==== CumSum ==== */

TEST(cumsum_exclusive_reverse_on_axis_0)
{
    float xv[6] = {1, 2, 3, 4, 5, 6}; /* [3, 2] */
    int64_t ax = 0;
    int32_t ax32 = -2;
    struct {
        int excl, rev;
        float want[6];
    } cases[] = {
        {0, 0, {1, 2, 4, 6, 9, 12}},
        {1, 0, {0, 0, 1, 2, 4, 6}},
        {0, 1, {9, 12, 8, 10, 5, 6}},
        {1, 1, {8, 10, 5, 6, 0, 0}},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        Arg a[2] = {IN("x", F32, 2, {3, 2}, xv), IN("axis", c % 2 ? I32 : I64, 0, {0}, c % 2 ? (void *)&ax32 : &ax)};
        Run r;
        node_model(&r, 14, "CumSum", a, 2, NULL);
        ob_attr_int(r.b, r.node, "exclusive", cases[c].excl);
        ob_attr_int(r.b, r.node, "reverse", cases[c].rev);
        RCHECK_OK(&r, run(&r));
        int64_t od[2] = {3, 2};
        CHECK_MSG(floats_are(&r.y[0], 2, od, cases[c].want, 6, 0), "case %zu", c);
        run_free(&r);
    }
}

TEST(cumsum_integers_wrap_and_bad_axis_is_runtime_error)
{
    int32_t xi[3] = {INT32_MAX, 1, 1};
    int64_t ax = 0;
    Arg a[2] = {IN("x", I32, 1, {3}, xi), IN("axis", I64, 1, {1}, &ax)};
    Run r;
    node_model(&r, 11, "CumSum", a, 2, NULL);
    RCHECK_OK(&r, run(&r));
    int64_t want[3] = {INT32_MAX, INT32_MIN, INT32_MIN + 1}, od[1] = {3};
    RCHECK(&r, ints_are(&r.y[0], I32, 1, od, want, 3));
    run_free(&r);
    int64_t bad = 3;
    Arg b[2] = {IN("x", I32, 1, {3}, xi), IN("axis", I64, 1, {1}, &bad)};
    node_model(&r, 11, "CumSum", b, 2, NULL);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    b[1].constant = true;
    node_model(&r, 11, "CumSum", b, 2, NULL);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ==== TopK ==== */

TEST(topk_every_opset_form)
{
    float xv[8] = {3, 1, 4, 1, 5, 9, 2, 6}; /* [2, 4] */
    int64_t k2 = 2;
    /* opset 1: k attribute */
    Arg a1 = IN("x", F32, 2, {2, 4}, xv);
    Run r;
    node_model(&r, 1, "TopK", &a1, 1, "v,i");
    ob_attr_int(r.b, r.node, "k", 2);
    RCHECK_OK(&r, run(&r));
    int64_t od[2] = {2, 2}, wi[4] = {2, 0, 1, 3};
    float wv[4] = {4, 3, 9, 6};
    RCHECK(&r, floats_are(&r.y[0], 2, od, wv, 4, 0) && ints_are(&r.y[1], I64, 2, od, wi, 4));
    run_free(&r);
    /* opset 10: K input bound at run time (dynamic), axis 0 */
    Arg a10[2] = {IN("x", F32, 2, {2, 4}, xv), IN("k", I64, 1, {1}, &(int64_t){1})};
    node_model(&r, 10, "TopK", a10, 2, "v,i");
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_OK(&r, run(&r));
    int64_t od0[2] = {1, 4}, wi0[4] = {1, 1, 0, 1};
    float wv0[4] = {5, 9, 4, 6};
    RCHECK(&r, floats_are(&r.y[0], 2, od0, wv0, 4, 0) && ints_are(&r.y[1], I64, 2, od0, wi0, 4));
    run_free(&r);
    /* opset 11: smallest, ties to the lower index */
    Arg a11[2] = {IN("x", F32, 2, {2, 4}, xv), CONST("k", I64, 1, {1}, &k2)};
    node_model(&r, 11, "TopK", a11, 2, "v,i");
    ob_attr_int(r.b, r.node, "largest", 0);
    RCHECK_OK(&r, run(&r));
    int64_t wi11[4] = {1, 3, 2, 0};
    float wv11[4] = {1, 1, 2, 5};
    RCHECK(&r, floats_are(&r.y[0], 2, od, wv11, 4, 0) && ints_are(&r.y[1], I64, 2, od, wi11, 4));
    run_free(&r);
}

TEST(topk_nan_order_integers_and_k_errors)
{
    float xv[5] = {1, NAN, -0.0f, 0.0f, INFINITY};
    int64_t k = 5, d5[1] = {5};
    Arg a[2] = {IN("x", F32, 1, {5}, xv), CONST("k", I64, 1, {1}, &k)};
    Run r;
    node_model(&r, 11, "TopK", a, 2, "v,i");
    RCHECK_OK(&r, run(&r));
    int64_t wi[5] = {1, 4, 0, 2, 3}; /* NaN is largest; -0 and +0 tie */
    RCHECK(&r, ints_are(&r.y[1], I64, 1, d5, wi, 5));
    run_free(&r);
    int64_t xi[4] = {INT64_MIN, -1, INT64_MAX, 0}, k3 = 3, d3[1] = {3};
    Arg ai[2] = {IN("x", I64, 1, {4}, xi), CONST("k", I64, 1, {1}, &k3)};
    node_model(&r, 11, "TopK", ai, 2, "v,i");
    RCHECK_OK(&r, run(&r));
    int64_t wv[3] = {INT64_MAX, 0, -1}, wix[3] = {2, 3, 1};
    RCHECK(&r, ints_are(&r.y[0], I64, 1, d3, wv, 3) && ints_are(&r.y[1], I64, 1, d3, wix, 3));
    run_free(&r);
    /* K larger than the axis: constant K fails while planning, a bound one at run time */
    int64_t k9 = 9;
    Arg ab[2] = {IN("x", I64, 1, {4}, xi), CONST("k", I64, 1, {1}, &k9)};
    node_model(&r, 11, "TopK", ab, 2, "v,i");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    ab[1].constant = false;
    node_model(&r, 11, "TopK", ab, 2, "v,i");
    crun_status st = run(&r);
    RCHECK(&r, st == CRUN_ERR_INVALID_MODEL || st == CRUN_ERR_RUNTIME);
    run_free(&r);
    /* opset 1 without k */
    Arg x1 = IN("x", F32, 1, {5}, xv);
    node_model(&r, 1, "TopK", &x1, 1, "v,i");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ==== Softmax family ==== */

TEST(hardmax_axis_semantics_change_at_13)
{
    float xv[8] = {1, 5, 2, 3, 7, 0, 7, 1}; /* [2, 2, 2] */
    Arg x = IN("x", F32, 3, {2, 2, 2}, xv);
    int64_t od[3] = {2, 2, 2};
    Run r;
    /* opset 11, axis 1: flattened rows of 4 */
    node_model(&r, 11, "Hardmax", &x, 1, NULL);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_OK(&r, run(&r));
    float w11[8] = {0, 1, 0, 0, 1, 0, 0, 0};
    RCHECK(&r, floats_are(&r.y[0], 3, od, w11, 8, 0));
    run_free(&r);
    /* opset 13, axis 1: along dim 1 only */
    node_model(&r, 13, "Hardmax", &x, 1, NULL);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_OK(&r, run(&r));
    float w13[8] = {0, 1, 1, 0, 1, 0, 0, 1};
    RCHECK(&r, floats_are(&r.y[0], 3, od, w13, 8, 0));
    run_free(&r);
    /* opset 13 default axis -1 with a tie: the first */
    node_model(&r, 13, "Hardmax", &x, 1, NULL);
    RCHECK_OK(&r, run(&r));
    float wd[8] = {0, 1, 0, 1, 1, 0, 1, 0};
    RCHECK(&r, floats_are(&r.y[0], 3, od, wd, 8, 0));
    run_free(&r);
}

TEST(softmax_many_short_rows_and_scalar)
{
    enum { ROWS = 5000 };
    static float xv[ROWS * 2], want[ROWS * 2];
    for (int i = 0; i < ROWS; i++) {
        xv[2 * i] = (float)(i % 7);
        xv[2 * i + 1] = 0;
        double e = exp(i % 7);
        want[2 * i] = (float)(e / (e + 1));
        want[2 * i + 1] = (float)(1 / (e + 1));
    }
    Arg x = IN("x", F32, 2, {ROWS, 2}, xv);
    Run r;
    node_model(&r, 13, "Softmax", &x, 1, NULL);
    RCHECK_OK(&r, run(&r));
    int64_t od[2] = {ROWS, 2};
    RCHECK(&r, floats_are(&r.y[0], 2, od, want, ROWS * 2, 1e-6));
    run_free(&r);
    float s = 3;
    Arg xs = IN("x", F32, 0, {0}, &s);
    node_model(&r, 11, "LogSoftmax", &xs, 1, NULL);
    ob_attr_int(r.b, r.node, "axis", -1);
    RCHECK_OK(&r, run(&r));
    float zero = 0;
    RCHECK(&r, floats_are(&r.y[0], 0, NULL, &zero, 1, 0));
    run_free(&r);
}

/* ==== normalisations ==== */

TEST(layernorm_outputs_and_broadcast_scale)
{
    float xv[6] = {1, 2, 3, 2, 2, 2}; /* [2, 3] */
    float sc = 2, bv[3] = {0, 1, 2};
    Arg a[3] = {IN("x", F32, 2, {2, 3}, xv), IN("s", F32, 1, {1}, &sc), IN("b", F32, 1, {3}, bv)};
    Run r;
    node_model(&r, 17, "LayerNormalization", a, 3, "y,mean,inv");
    ob_attr_float(r.b, r.node, "epsilon", 0);
    RCHECK_OK(&r, run(&r));
    float is = 1.0f / sqrtf(2.0f / 3);
    float wy[6] = {-2 * is, 1, 2 + 2 * is, 0, 1, 2}; /* the constant row has var 0 -> inf * 0 = NaN */
    wy[3] = wy[4] = wy[5] = NAN;
    int64_t od[2] = {2, 3}, md[2] = {2, 1};
    float wm[2] = {2, 2}, wi[2] = {is, INFINITY};
    RCHECK(&r, floats_are(&r.y[0], 2, od, wy, 6, 1e-5));
    RCHECK(&r, floats_are(&r.y[1], 2, md, wm, 2, 1e-6) && floats_are(&r.y[2], 2, md, wi, 2, 1e-5));
    run_free(&r);
    /* axis 0 over everything, no bias, epsilon default */
    Arg a0[2] = {IN("x", F32, 2, {2, 3}, xv), IN("s", F32, 2, {2, 3}, (float[6]){1, 1, 1, 1, 1, 1})};
    node_model(&r, 17, "LayerNormalization", a0, 2, "y");
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_OK(&r, run(&r));
    /* mean 2, var 1/3 */
    float k = 1.0f / sqrtf(1.0f / 3 + 1e-5f);
    float w0[6] = {-k, 0, k, 0, 0, 0};
    RCHECK(&r, floats_are(&r.y[0], 2, od, w0, 6, 1e-5));
    run_free(&r);
    /* a scale that does not broadcast */
    Arg ab[2] = {IN("x", F32, 2, {2, 3}, xv), IN("s", F32, 1, {2}, bv)};
    node_model(&r, 17, "LayerNormalization", ab, 2, "y");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(instancenorm_and_lpnorm)
{
    float xv[8] = {1, 3, 0, 0, 2, 2, 4, 8}; /* [2, 2, 2] */
    float sc[2] = {1, 2}, bv[2] = {0, 10};
    Arg a[3] = {IN("x", F32, 3, {2, 2, 2}, xv), IN("s", F32, 1, {2}, sc), IN("b", F32, 1, {2}, bv)};
    Run r;
    node_model(&r, 6, "InstanceNormalization", a, 3, NULL);
    ob_attr_float(r.b, r.node, "epsilon", 0);
    RCHECK_OK(&r, run(&r));
    int64_t od[3] = {2, 2, 2};
    float w[8] = {-1, 1, NAN, NAN, NAN, NAN, 8, 12};
    RCHECK(&r, floats_are(&r.y[0], 3, od, w, 8, 1e-6));
    run_free(&r);
    /* LpNormalization p=1 along axis 1 (stride 2), p=2 along the last axis; zero rows stay zero */
    Arg x = IN("x", F32, 3, {2, 2, 2}, xv);
    node_model(&r, 1, "LpNormalization", &x, 1, NULL);
    ob_attr_int(r.b, r.node, "axis", 1);
    ob_attr_int(r.b, r.node, "p", 1);
    RCHECK_OK(&r, run(&r));
    float w1[8] = {1, 1, 0, 0, 2.0f / 6, 2.0f / 10, 4.0f / 6, 8.0f / 10};
    RCHECK(&r, floats_are(&r.y[0], 3, od, w1, 8, 1e-6));
    run_free(&r);
    node_model(&r, 1, "LpNormalization", &x, 1, NULL);
    RCHECK_OK(&r, run(&r));
    float n1 = sqrtf(10), n3 = sqrtf(8), n4 = sqrtf(80);
    float w2[8] = {1 / n1, 3 / n1, 0, 0, 2 / n3, 2 / n3, 4 / n4, 8 / n4};
    RCHECK(&r, floats_are(&r.y[0], 3, od, w2, 8, 1e-6));
    run_free(&r);
    node_model(&r, 1, "LpNormalization", &x, 1, NULL);
    ob_attr_int(r.b, r.node, "p", 3);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(mvn_default_and_custom_axes)
{
    /* [2, 2, 1, 2]: default axes {0, 2, 3} give per-channel statistics */
    float xv[8] = {0, 2, 10, 10, 4, 6, 20, 30};
    Arg x = IN("x", F32, 4, {2, 2, 1, 2}, xv);
    Run r;
    node_model(&r, 13, "MeanVarianceNormalization", &x, 1, NULL);
    RCHECK_OK(&r, run(&r));
    /* channel 0: 0 2 4 6, mean 3, std sqrt(5); channel 1: 10 10 20 30, mean 17.5, std sqrt(68.75) */
    float s0 = sqrtf(5), s1 = sqrtf(68.75f);
    float w[8] = {-3 / s0, -1 / s0, -7.5f / s1, -7.5f / s1, 1 / s0, 3 / s0, 2.5f / s1, 12.5f / s1};
    int64_t od[4] = {2, 2, 1, 2};
    RCHECK(&r, floats_are(&r.y[0], 4, od, w, 8, 1e-5));
    run_free(&r);
    /* axes {1}: across the two channels at each position */
    node_model(&r, 9, "MeanVarianceNormalization", &x, 1, NULL);
    ob_attr_ints(r.b, r.node, "axes", (int64_t[]){1}, 1);
    RCHECK_OK(&r, run(&r));
    float w1[8] = {-1, -1, 1, 1, -1, -1, 1, 1};
    RCHECK(&r, floats_are(&r.y[0], 4, od, w1, 8, 1e-6));
    run_free(&r);
}

TEST(lrn_window_is_clipped)
{
    float xv[4] = {1, 2, 3, 4}; /* [1, 4, 1, 1] */
    Arg x = IN("x", F32, 4, {1, 4, 1, 1}, xv);
    Run r;
    node_model(&r, 13, "LRN", &x, 1, NULL);
    ob_attr_int(r.b, r.node, "size", 2); /* window [c, c + 1] */
    ob_attr_float(r.b, r.node, "alpha", 2);
    ob_attr_float(r.b, r.node, "beta", 1);
    ob_attr_float(r.b, r.node, "bias", 1);
    RCHECK_OK(&r, run(&r));
    /* y = x / (1 + 1 * sumsq) */
    float w[4] = {1.0f / 6, 2.0f / 14, 3.0f / 26, 4.0f / 17};
    int64_t od[4] = {1, 4, 1, 1};
    RCHECK(&r, floats_are(&r.y[0], 4, od, w, 4, 1e-6));
    run_free(&r);
    node_model(&r, 13, "LRN", &x, 1, NULL);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ==== BatchNormalization ==== */

TEST(batchnorm_legacy_opsets_and_spatial_0)
{
    float xv[4] = {1, 2, 3, 4}; /* [2, 2] */
    float one[2] = {1, 1}, zero[2] = {0, 0}, mean[2] = {1, 2}, var[2] = {4, 1};
    Arg a[5] = {IN("x", F32, 2, {2, 2}, xv), IN("s", F32, 1, {2}, one), IN("b", F32, 1, {2}, zero),
                IN("m", F32, 1, {2}, mean),  IN("v", F32, 1, {2}, var)};
    Run r;
    node_model(&r, 1, "BatchNormalization", a, 5, NULL);
    ob_attr_ints(r.b, r.node, "consumed_inputs", (int64_t[]){0, 0, 0, 1, 1}, 5);
    ob_attr_int(r.b, r.node, "is_test", 1);
    ob_attr_float(r.b, r.node, "epsilon", 0);
    RCHECK_OK(&r, run(&r));
    float w[4] = {0, 0, 1, 2};
    int64_t od[2] = {2, 2};
    RCHECK(&r, floats_are(&r.y[0], 2, od, w, 4, 1e-6));
    run_free(&r);
    /* opset 7 spatial=0 on [2, 1, 2]: one parameter per element of a sample */
    Arg a3[5] = {IN("x", F32, 3, {2, 1, 2}, xv), IN("s", F32, 1, {2}, one), IN("b", F32, 1, {2}, zero),
                 IN("m", F32, 1, {2}, mean),     IN("v", F32, 1, {2}, var)};
    node_model(&r, 7, "BatchNormalization", a3, 5, NULL);
    ob_attr_int(r.b, r.node, "spatial", 0);
    ob_attr_float(r.b, r.node, "epsilon", 0);
    RCHECK_OK(&r, run(&r));
    int64_t od3[3] = {2, 1, 2};
    RCHECK(&r, floats_are(&r.y[0], 3, od3, w, 4, 1e-6));
    run_free(&r);
}

TEST(batchnorm_training_outputs)
{
    float xv[4] = {1, 2, 3, 6}; /* [2, 2]: batch mean {2, 4}, var {1, 4} */
    float one[2] = {1, 1}, zero[2] = {0, 0}, mean[2] = {10, 20}, var[2] = {1, 2};
    Arg a[5] = {IN("x", F32, 2, {2, 2}, xv), IN("s", F32, 1, {2}, one), IN("b", F32, 1, {2}, zero),
                IN("m", F32, 1, {2}, mean),  IN("v", F32, 1, {2}, var)};
    int64_t od[2] = {2, 2}, pd[1] = {2};
    float wy[4] = {-1, -1, 1, 1};
    float rm[2] = {10 * 0.5f + 2 * 0.5f, 20 * 0.5f + 4 * 0.5f}, rv[2] = {1, 3};
    /* opset 15: training_mode */
    Run r;
    node_model(&r, 15, "BatchNormalization", a, 5, "y,rm,rv");
    ob_attr_int(r.b, r.node, "training_mode", 1);
    ob_attr_float(r.b, r.node, "momentum", 0.5f);
    ob_attr_float(r.b, r.node, "epsilon", 0);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, floats_are(&r.y[0], 2, od, wy, 4, 1e-6));
    RCHECK(&r, floats_are(&r.y[1], 1, pd, rm, 2, 1e-6) && floats_are(&r.y[2], 1, pd, rv, 2, 1e-6));
    run_free(&r);
    /* opset 9: asking for the outputs means training; saved_mean/var are the batch's */
    node_model(&r, 9, "BatchNormalization", a, 5, "y,rm,rv,sm,sv");
    ob_attr_float(r.b, r.node, "momentum", 0.5f);
    ob_attr_float(r.b, r.node, "epsilon", 0);
    RCHECK_OK(&r, run(&r));
    float sm[2] = {2, 4}, sv[2] = {1, 4};
    RCHECK(&r, floats_are(&r.y[0], 2, od, wy, 4, 1e-6) && floats_are(&r.y[1], 1, pd, rm, 2, 1e-6));
    RCHECK(&r, floats_are(&r.y[3], 1, pd, sm, 2, 1e-6) && floats_are(&r.y[4], 1, pd, sv, 2, 1e-6));
    run_free(&r);
    /* opset 15 training_mode=1 with only Y: batch statistics still */
    node_model(&r, 15, "BatchNormalization", a, 5, "y");
    ob_attr_int(r.b, r.node, "training_mode", 1);
    ob_attr_float(r.b, r.node, "epsilon", 0);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, floats_are(&r.y[0], 2, od, wy, 4, 1e-6));
    run_free(&r);
    /* running outputs without training_mode are invalid from opset 14 */
    node_model(&r, 14, "BatchNormalization", a, 5, "y,rm,rv");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ==== losses ==== */

TEST(nllloss_reductions_ignore_index_and_bad_target)
{
    float xv[6] = {-1, -2, -3, -4, -5, -6}; /* [3, 2] */
    int64_t t[3] = {0, 1, 1};
    float wt[2] = {1, 3};
    Arg a[3] = {IN("x", F32, 2, {3, 2}, xv), IN("t", I64, 1, {3}, t), IN("w", F32, 1, {2}, wt)};
    Run r;
    node_model(&r, 13, "NegativeLogLikelihoodLoss", a, 3, NULL);
    ob_attr_string(r.b, r.node, "reduction", "none");
    RCHECK_OK(&r, run(&r));
    int64_t d3[1] = {3};
    float wn[3] = {1, 12, 18};
    RCHECK(&r, floats_are(&r.y[0], 1, d3, wn, 3, 1e-6));
    run_free(&r);
    /* mean: sum / sum of weights; ignore_index 1 leaves only element 0 */
    node_model(&r, 12, "NegativeLogLikelihoodLoss", a, 3, NULL);
    RCHECK_OK(&r, run(&r));
    float wm = 31.0f / 7;
    RCHECK(&r, floats_are(&r.y[0], 0, NULL, &wm, 1, 1e-6));
    run_free(&r);
    node_model(&r, 13, "NegativeLogLikelihoodLoss", a, 3, NULL);
    ob_attr_int(r.b, r.node, "ignore_index", 1);
    RCHECK_OK(&r, run(&r));
    float one = 1;
    RCHECK(&r, floats_are(&r.y[0], 0, NULL, &one, 1, 1e-6));
    run_free(&r);
    /* all ignored: mean is 0/0 */
    int64_t ti[3] = {-1, -1, -1};
    Arg ai[2] = {IN("x", F32, 2, {3, 2}, xv), IN("t", I64, 1, {3}, ti)};
    node_model(&r, 13, "NegativeLogLikelihoodLoss", ai, 2, NULL);
    ob_attr_int(r.b, r.node, "ignore_index", -1);
    RCHECK_OK(&r, run(&r));
    float nan = NAN;
    RCHECK(&r, floats_are(&r.y[0], 0, NULL, &nan, 1, 0));
    run_free(&r);
    /* a target out of range */
    int64_t tb[3] = {0, 2, 1};
    Arg ab[2] = {IN("x", F32, 2, {3, 2}, xv), IN("t", I64, 1, {3}, tb)};
    node_model(&r, 13, "NegativeLogLikelihoodLoss", ab, 2, NULL);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    node_model(&r, 13, "NegativeLogLikelihoodLoss", ab, 2, NULL);
    ob_attr_string(r.b, r.node, "reduction", "avg");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(sce_log_prob_and_nd)
{
    /* [1, 2, 2] scores, labels [1, 2]: rows (d=0) {0, ln 3}, (d=1) {0, 0} */
    float xv[4] = {0, 0, logf(3), 0};
    int32_t lab[2] = {1, 0};
    Arg a[2] = {IN("x", F32, 3, {1, 2, 2}, xv), IN("l", I32, 2, {1, 2}, lab)};
    Run r;
    node_model(&r, 13, "SoftmaxCrossEntropyLoss", a, 2, "loss,lp");
    ob_attr_string(r.b, r.node, "reduction", "sum");
    RCHECK_OK(&r, run(&r));
    float want = -logf(0.75f) - logf(0.5f);
    float lp[4] = {logf(0.25f), logf(0.5f), logf(0.75f), logf(0.5f)};
    int64_t od[3] = {1, 2, 2};
    RCHECK(&r, floats_are(&r.y[0], 0, NULL, &want, 1, 1e-6) && floats_are(&r.y[1], 3, od, lp, 4, 1e-6));
    run_free(&r);
    node_model(&r, 12, "SoftmaxCrossEntropyLoss", a, 2, "loss");
    ob_attr_string(r.b, r.node, "reduction", "none");
    RCHECK_OK(&r, run(&r));
    float wn[2] = {-logf(0.75f), -logf(0.5f)};
    int64_t ld[2] = {1, 2};
    RCHECK(&r, floats_are(&r.y[0], 2, ld, wn, 2, 1e-6));
    run_free(&r);
    int32_t bad[2] = {1, -3};
    Arg ab[2] = {IN("x", F32, 3, {1, 2, 2}, xv), IN("l", I32, 2, {1, 2}, bad)};
    node_model(&r, 13, "SoftmaxCrossEntropyLoss", ab, 2, "loss");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
}
