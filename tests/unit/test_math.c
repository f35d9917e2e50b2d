/* test_math.c - the elementwise math family (arith.c, compare.c, math_variadic.c, unary.c)
 * against hand-checked values: the legacy broadcasting of opsets < 7, integer edge cases
 * (wrapping, division and modulo by zero, shifts past the width), NaN handling, every
 * opset form with different defaults, constant inputs (folded while loading) as well as
 * runtime ones, and the errors bad attributes and shapes must give. */
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
#define U16 CRUN_DTYPE_UINT16
#define U64 CRUN_DTYPE_UINT64
#define BOOL CRUN_DTYPE_BOOL

/* The output has this type and shape and exactly these bytes. */
static bool output_is(const crun_tensor *t, crun_dtype dtype, int rank, const int64_t *dims, const void *want)
{
    return t->dtype == dtype && shape_is(t, rank, dims) && !memcmp(t->data, want, t->size_bytes);
}

/* Floats within rtol (relative) of want; NaN matches NaN. */
static bool floats_near(const crun_tensor *t, const float *want, long n, double rtol, double atol)
{
    if (t->dtype != F32 || (long)(t->size_bytes / 4) != n)
        return false;
    const float *got = t->data;
    for (long i = 0; i < n; i++) {
        if (isnan(want[i]) ? !isnan(got[i]) : !(fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i]))) {
            fprintf(stderr, "  element %ld = %.9g, expected %.9g\n", i, got[i], want[i]);
            return false;
        }
    }
    return true;
}

/* ---- legacy broadcasting (opset < 7) ---- */

TEST(legacy_add_matches_b_from_axis)
{
    /* A [2,3,2] + B [3] at axis 1: B runs along dim 1 (numpy would align it to the end,
     * where the sizes do not even match). */
    float a[12] = {0}, bv[3] = {10, 20, 30};
    Arg args[2] = {{"a", F32, 3, {2, 3, 2}, a, false}, {"b", F32, 1, {3}, bv, false}};
    Run r;
    node_model(&r, 6, "Add", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_OK(&r, run(&r));
    float want[12] = {10, 10, 20, 20, 30, 30, 10, 10, 20, 20, 30, 30};
    RCHECK(&r, shape_is(&r.y[0], 3, (int64_t[]){2, 3, 2}) && floats_near(&r.y[0], want, 12, 0, 0));
    run_free(&r);
}

TEST(legacy_sub_default_axis_aligns_to_the_end)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {1, 1, 2};
    Arg args[2] = {{"a", F32, 2, {2, 3}, a, false}, {"b", F32, 1, {3}, bv, true}};
    Run r;
    node_model(&r, 1, "Sub", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    RCHECK_OK(&r, run(&r));
    float want[6] = {0, 1, 1, 3, 4, 4};
    RCHECK(&r, floats_near(&r.y[0], want, 6, 0, 0));
    run_free(&r);
}

TEST(legacy_div_by_leading_axis_and_scalar)
{
    /* B [2] at axis 0 of A [2,3]: numpy could not broadcast these at all. */
    float a[6] = {2, 4, 6, 9, 12, 15}, bv[2] = {2, 3};
    Arg args[2] = {{"a", F32, 2, {2, 3}, a, false}, {"b", F32, 1, {2}, bv, false}};
    Run r;
    node_model(&r, 6, "Div", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_OK(&r, run(&r));
    float want[6] = {1, 2, 3, 3, 4, 5};
    RCHECK(&r, floats_near(&r.y[0], want, 6, 0, 0));
    run_free(&r);

    /* A one-element B of rank 2 is a scalar, even against a rank-3 A of other dims. */
    float s[1] = {2};
    Arg args2[2] = {{"a", F32, 3, {1, 2, 3}, a, false}, {"b", F32, 2, {1, 1}, s, false}};
    node_model(&r, 6, "Mul", args2, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    RCHECK_OK(&r, run(&r));
    float want2[6] = {4, 8, 12, 18, 24, 30};
    RCHECK(&r, shape_is(&r.y[0], 3, (int64_t[]){1, 2, 3}) && floats_near(&r.y[0], want2, 6, 0, 0));
    run_free(&r);
}

TEST(legacy_size1_dim_of_b_stretches)
{
    /* PyTorch's exports: A [2,3] + B [2,1] with axis 0. */
    float a[6] = {0, 0, 0, 0, 0, 0}, bv[2] = {1, 2};
    Arg args[2] = {{"a", F32, 2, {2, 3}, a, false}, {"b", F32, 2, {2, 1}, bv, false}};
    Run r;
    node_model(&r, 6, "Add", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_OK(&r, run(&r));
    float want[6] = {1, 1, 1, 2, 2, 2};
    RCHECK(&r, floats_near(&r.y[0], want, 6, 0, 0));
    run_free(&r);
}

TEST(legacy_broadcast_errors)
{
    float a[6] = {0}, bv[3] = {0};
    Run r;
    /* Without broadcast=1 the shapes must be equal, even where numpy rules would work. */
    Arg args[2] = {{"a", F32, 2, {2, 3}, a, false}, {"b", F32, 1, {3}, bv, false}};
    node_model(&r, 6, "Add", args, 2, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    /* B [3] at axis 0 meets A's dim 2; at axis 2 it runs past A's rank. */
    node_model(&r, 6, "Add", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    node_model(&r, 6, "Add", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    ob_attr_int(r.b, r.node, "axis", 2);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    node_model(&r, 6, "Add", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 2);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    /* From opset 7 the same shapes broadcast the numpy way and the attributes are gone. */
    node_model(&r, 7, "Add", args, 2, "out");
    RCHECK_OK(&r, run(&r));
    run_free(&r);
}

TEST(legacy_greater_and_and)
{
    float a[4] = {1, 5, 2, 8}, bv[2] = {3, 4};
    Arg args[2] = {{"a", F32, 2, {2, 2}, a, false}, {"b", F32, 1, {2}, bv, false}};
    Run r;
    node_model(&r, 1, "Greater", args, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_OK(&r, run(&r));
    uint8_t want[4] = {0, 1, 0, 1};
    RCHECK(&r, output_is(&r.y[0], BOOL, 2, (int64_t[]){2, 2}, want));
    run_free(&r);

    uint8_t p[4] = {1, 1, 0, 1}, q[2] = {1, 0};
    Arg bargs[2] = {{"p", BOOL, 2, {2, 2}, p, false}, {"q", BOOL, 1, {2}, q, false}};
    node_model(&r, 1, "And", bargs, 2, "out");
    ob_attr_int(r.b, r.node, "broadcast", 1);
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_OK(&r, run(&r));
    uint8_t want2[4] = {1, 1, 0, 0};
    RCHECK(&r, output_is(&r.y[0], BOOL, 2, (int64_t[]){2, 2}, want2));
    run_free(&r);
}

/* ---- Pow ---- */

TEST(integer_pow_is_exact)
{
    int64_t a[4] = {3, -2, 2, 7}, e[4] = {39, 3, -1, 0};
    Arg args[2] = {{"a", I64, 1, {4}, a, false}, {"e", I64, 1, {4}, e, false}};
    Run r;
    node_model(&r, 13, "Pow", args, 2, "out");
    RCHECK_OK(&r, run(&r));
    int64_t want[4] = {4052555153018976267LL, -8, 0, 1};
    RCHECK(&r, output_is(&r.y[0], I64, 1, (int64_t[]){4}, want));
    run_free(&r);
}

/* ---- Mod ---- */

TEST(mod_integer_signs_and_zero)
{
    int32_t a[6] = {7, -7, 7, -7, 5, INT32_MIN}, bv[6] = {3, 3, -3, -3, 0, -1};
    Arg args[2] = {{"a", I32, 1, {6}, a, false}, {"b", I32, 1, {6}, bv, false}};
    int32_t want_mod[6] = {1, 2, -2, -1, 0, 0}, want_fmod[6] = {1, -1, 1, -1, 0, 0};
    for (int f = 0; f < 2; f++) {
        Run r;
        node_model(&r, 13, "Mod", args, 2, "out");
        if (f)
            ob_attr_int(r.b, r.node, "fmod", 1);
        RCHECK_OK(&r, run(&r));
        RCHECK_MSG(&r, output_is(&r.y[0], I32, 1, (int64_t[]){6}, f ? want_fmod : want_mod), "fmod=%d", f);
        run_free(&r);
    }
}

TEST(mod_float_and_unsigned)
{
    float a[4] = {5.5f, -5.5f, 5.5f, 1}, bv[4] = {2, 2, -2, 0};
    Arg args[2] = {{"a", F32, 1, {4}, a, false}, {"b", F32, 1, {4}, bv, false}};
    Run r;
    node_model(&r, 10, "Mod", args, 2, "out");
    ob_attr_int(r.b, r.node, "fmod", 1);
    RCHECK_OK(&r, run(&r));
    float want[4] = {1.5f, -1.5f, 1.5f, NAN};
    RCHECK(&r, floats_near(&r.y[0], want, 4, 0, 0));
    run_free(&r);
    /* fmod=0 on floats: numpy.mod's sign of the divisor. */
    node_model(&r, 13, "Mod", args, 2, "out");
    RCHECK_OK(&r, run(&r));
    float want0[4] = {1.5f, 0.5f, -0.5f, NAN};
    RCHECK(&r, floats_near(&r.y[0], want0, 4, 0, 0));
    run_free(&r);

    uint8_t ua[3] = {200, 7, 9}, ub[1] = {0};
    Arg uargs[2] = {{"a", U8, 1, {3}, ua, false}, {"b", U8, 0, {0}, ub, true}};
    node_model(&r, 13, "Mod", uargs, 2, "out");
    RCHECK_OK(&r, run(&r));
    uint8_t uwant[3] = {0, 0, 0};
    RCHECK(&r, output_is(&r.y[0], U8, 1, (int64_t[]){3}, uwant));
    run_free(&r);

    node_model(&r, 13, "Mod", args, 2, "out");
    ob_attr_int(r.b, r.node, "fmod", 2);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ---- BitShift ---- */

TEST(bitshift_directions_and_wide_shifts)
{
    uint8_t x[4] = {0x81, 1, 255, 16}, s[4] = {1, 7, 8, 200};
    Arg args[2] = {{"x", U8, 1, {4}, x, false}, {"s", U8, 1, {4}, s, false}};
    Run r;
    node_model(&r, 11, "BitShift", args, 2, "out");
    ob_attr_string(r.b, r.node, "direction", "LEFT");
    RCHECK_OK(&r, run(&r));
    uint8_t left[4] = {0x02, 0x80, 0, 0};
    RCHECK(&r, output_is(&r.y[0], U8, 1, (int64_t[]){4}, left));
    run_free(&r);

    node_model(&r, 11, "BitShift", args, 2, "out");
    ob_attr_string(r.b, r.node, "direction", "RIGHT");
    RCHECK_OK(&r, run(&r));
    uint8_t right[4] = {0x40, 0, 0, 0};
    RCHECK(&r, output_is(&r.y[0], U8, 1, (int64_t[]){4}, right));
    run_free(&r);

    uint64_t x64[3] = {1, UINT64_MAX, 3}, s64[1] = {63};
    Arg args64[2] = {{"x", U64, 1, {3}, x64, false}, {"s", U64, 1, {1}, s64, false}};
    node_model(&r, 11, "BitShift", args64, 2, "out");
    ob_attr_string(r.b, r.node, "direction", "LEFT");
    RCHECK_OK(&r, run(&r));
    uint64_t want64[3] = {1ull << 63, 1ull << 63, 1ull << 63};
    RCHECK(&r, output_is(&r.y[0], U64, 1, (int64_t[]){3}, want64));
    run_free(&r);

    node_model(&r, 11, "BitShift", args, 2, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL); /* direction is required */
    run_free(&r);
    node_model(&r, 11, "BitShift", args, 2, "out");
    ob_attr_string(r.b, r.node, "direction", "left");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    /* Signed types are not allowed. */
    int8_t sx[1] = {1};
    Arg sargs[2] = {{"x", I8, 1, {1}, sx, false}, {"s", I8, 1, {1}, sx, false}};
    node_model(&r, 11, "BitShift", sargs, 2, "out");
    ob_attr_string(r.b, r.node, "direction", "LEFT");
    RCHECK(&r, run(&r) != CRUN_OK);
    run_free(&r);
}

/* ---- Max, Min, Sum, Mean ---- */

TEST(variadic_three_inputs_broadcast)
{
    /* [2,1], [3], [] -> [2,3] */
    float a[2] = {1, 10}, bv[3] = {0, 5, 20}, c[1] = {4};
    Arg args[3] = {{"a", F32, 2, {2, 1}, a, false}, {"b", F32, 1, {3}, bv, false}, {"c", F32, 0, {0}, c, false}};
    struct {
        const char *op;
        float want[6];
    } cases[] = {
        {"Max", {4, 5, 20, 10, 10, 20}},
        {"Min", {0, 1, 1, 0, 4, 4}},
        {"Sum", {5, 10, 25, 14, 19, 34}},
        {"Mean", {5.0f / 3, 10.0f / 3, 25.0f / 3, 14.0f / 3, 19.0f / 3, 34.0f / 3}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Run r;
        node_model(&r, 13, cases[k].op, args, 3, "out");
        RCHECK_OK(&r, run(&r));
        RCHECK_MSG(&r, shape_is(&r.y[0], 2, (int64_t[]){2, 3}) && floats_near(&r.y[0], cases[k].want, 6, 1e-6, 0), "%s",
                   cases[k].op);
        run_free(&r);
    }
}

TEST(variadic_one_input_and_old_opsets)
{
    float a[3] = {1, -2, 3}, bv[3] = {2, -4, 1};
    Arg one[1] = {{"a", F32, 1, {3}, a, false}};
    const char *ops[] = {"Max", "Min", "Sum", "Mean"};
    for (int k = 0; k < 4; k++) {
        Run r;
        node_model(&r, 13, ops[k], one, 1, "out");
        RCHECK_OK(&r, run(&r));
        RCHECK_MSG(&r, floats_near(&r.y[0], a, 3, 0, 0), "%s of one input", ops[k]);
        run_free(&r);
    }
    /* Opset 6 (no broadcasting, equal shapes) and opset 1 (consumed_inputs, ignored). */
    Arg two[2] = {{"a", F32, 1, {3}, a, false}, {"b", F32, 1, {3}, bv, true}};
    float want[3] = {1.5f, -3, 2};
    for (int opset = 1; opset <= 8; opset += 5) {
        Run r;
        node_model(&r, opset, "Mean", two, 2, "out");
        if (opset == 1)
            ob_attr_ints(r.b, r.node, "consumed_inputs", (int64_t[]){0, 0}, 2);
        RCHECK_OK(&r, run(&r));
        RCHECK_MSG(&r, floats_near(&r.y[0], want, 3, 0, 0), "opset %d", opset);
        run_free(&r);
    }
}

TEST(max_min_nan_and_integers)
{
    float a[3] = {NAN, 1, 2}, bv[3] = {1, NAN, 3};
    Arg args[2] = {{"a", F32, 1, {3}, a, false}, {"b", F32, 1, {3}, bv, false}};
    Run r;
    node_model(&r, 13, "Max", args, 2, "out");
    RCHECK_OK(&r, run(&r));
    float want[3] = {NAN, NAN, 3};
    RCHECK(&r, floats_near(&r.y[0], want, 3, 0, 0));
    run_free(&r);

    int64_t ia[3] = {INT64_MIN, 5, -1}, ib[3] = {INT64_MAX, -5, 0};
    Arg iargs[2] = {{"a", I64, 1, {3}, ia, false}, {"b", I64, 1, {3}, ib, false}};
    node_model(&r, 12, "Min", iargs, 2, "out");
    RCHECK_OK(&r, run(&r));
    int64_t iwant[3] = {INT64_MIN, -5, -1};
    RCHECK(&r, output_is(&r.y[0], I64, 1, (int64_t[]){3}, iwant));
    run_free(&r);

    /* Mismatched types and shapes are model errors. */
    Arg bad[2] = {{"a", F32, 1, {3}, a, false}, {"b", I64, 1, {3}, ib, false}};
    node_model(&r, 13, "Max", bad, 2, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    Arg bad2[2] = {{"a", F32, 1, {3}, a, false}, {"b", F32, 1, {2}, bv, false}};
    node_model(&r, 13, "Sum", bad2, 2, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(variadic_large_inputs_on_threads)
{
    /* Big enough to be split into tiles across threads; same bits for 1 and 4 threads. */
    enum { N = 70001 };
    float *a = malloc(N * sizeof(float)), *bv = malloc(N * sizeof(float)), *c = malloc(N * sizeof(float));
    float *y1 = malloc(N * sizeof(float));
    CHECK(a && bv && c && y1);
    fill_random(a, N, 1, -1, 1);
    fill_random(bv, N, 2, -1, 1);
    fill_random(c, N, 3, -1, 1);
    Arg args[3] = {{"a", F32, 1, {N}, a, false}, {"b", F32, 1, {N}, bv, false}, {"c", F32, 1, {N}, c, false}};
    bool ok = true;
    for (int t = 1; t <= 4 && ok; t += 3) {
        Run r;
        node_model(&r, 13, "Mean", args, 3, "out");
        ok = run_threads(&r, t) == CRUN_OK && r.y[0].size_bytes == N * sizeof(float);
        if (ok && t == 1)
            memcpy(y1, r.y[0].data, N * sizeof(float));
        else if (ok)
            ok = !memcmp(y1, r.y[0].data, N * sizeof(float));
        run_free(&r);
    }
    bool right = true;
    for (long i = 0; i < N && ok; i++)
        right = right && y1[i] == (a[i] + bv[i] + c[i]) / 3.0f;
    free(a), free(bv), free(c), free(y1);
    CHECK(ok);
    CHECK(right);
}

/* ---- comparisons, logic, Where ---- */

TEST(comparisons_with_nan_and_broadcast)
{
    float a[4] = {1, 2, NAN, 4}, bv[1] = {2};
    Arg args[2] = {{"a", F32, 1, {4}, a, false}, {"b", F32, 0, {0}, bv, false}};
    struct {
        const char *op;
        int opset;
        uint8_t want[4];
    } cases[] = {
        {"Equal", 11, {0, 1, 0, 0}},         {"Less", 9, {1, 0, 0, 0}},
        {"Greater", 13, {0, 0, 0, 1}},       {"LessOrEqual", 12, {1, 1, 0, 0}},
        {"GreaterOrEqual", 16, {0, 1, 0, 1}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Run r;
        node_model(&r, cases[k].opset, cases[k].op, args, 2, "out");
        RCHECK_OK(&r, run(&r));
        RCHECK_MSG(&r, output_is(&r.y[0], BOOL, 1, (int64_t[]){4}, cases[k].want), "%s", cases[k].op);
        run_free(&r);
    }
    /* Integers compare exactly (as double, INT64_MAX and INT64_MAX - 1 would be equal). */
    int64_t ia[2] = {INT64_MAX, -3}, ib[2] = {INT64_MAX - 1, -3};
    Arg iargs[2] = {{"a", I64, 1, {2}, ia, false}, {"b", I64, 1, {2}, ib, true}};
    Run r;
    node_model(&r, 13, "Equal", iargs, 2, "out");
    RCHECK_OK(&r, run(&r));
    uint8_t iwant[2] = {0, 1};
    RCHECK(&r, output_is(&r.y[0], BOOL, 1, (int64_t[]){2}, iwant));
    run_free(&r);
    /* Types must match. */
    Arg bad[2] = {{"a", F32, 1, {4}, a, false}, {"b", I64, 1, {2}, ib, false}};
    node_model(&r, 13, "Less", bad, 2, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(logic_ops_on_bool)
{
    uint8_t p[4] = {0, 0, 1, 1}, q[4] = {0, 1, 0, 1};
    Arg args[2] = {{"p", BOOL, 2, {2, 2}, p, false}, {"q", BOOL, 2, {2, 2}, q, false}};
    struct {
        const char *op;
        uint8_t want[4];
    } cases[] = {{"And", {0, 0, 0, 1}}, {"Or", {0, 1, 1, 1}}, {"Xor", {0, 1, 1, 0}}, {"Equal", {1, 0, 0, 1}}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Run r;
        node_model(&r, 13, cases[k].op, args, 2, "out");
        RCHECK_OK(&r, run(&r));
        RCHECK_MSG(&r, output_is(&r.y[0], BOOL, 2, (int64_t[]){2, 2}, cases[k].want), "%s", cases[k].op);
        run_free(&r);
    }
    Run r;
    node_model(&r, 1, "Not", args, 1, "out");
    RCHECK_OK(&r, run(&r));
    uint8_t nwant[4] = {1, 1, 0, 0};
    RCHECK(&r, output_is(&r.y[0], BOOL, 2, (int64_t[]){2, 2}, nwant));
    run_free(&r);
    /* And on floats has no kernel. */
    float f[1] = {1};
    Arg fargs[2] = {{"a", F32, 1, {1}, f, false}, {"b", F32, 1, {1}, f, false}};
    node_model(&r, 13, "And", fargs, 2, "out");
    RCHECK(&r, run(&r) != CRUN_OK);
    run_free(&r);
}

TEST(where_three_way_broadcast_every_size)
{
    /* cond [2,1], x [3], y [] -> [2,3] */
    uint8_t c[2] = {1, 0};
    Run r;
    int64_t x64[3] = {1, 2, 3}, y64[1] = {-1};
    Arg args64[3] = {{"c", BOOL, 2, {2, 1}, c, false}, {"x", I64, 1, {3}, x64, false}, {"y", I64, 0, {0}, y64, false}};
    node_model(&r, 9, "Where", args64, 3, "out");
    RCHECK_OK(&r, run(&r));
    int64_t want64[6] = {1, 2, 3, -1, -1, -1};
    RCHECK(&r, output_is(&r.y[0], I64, 2, (int64_t[]){2, 3}, want64));
    run_free(&r);

    uint16_t x16[3] = {0x3c00, 0x4000, 0x4200}, y16[1] = {0xbc00}; /* float16 1, 2, 3 and -1 */
    Arg args16[3] = {{"c", BOOL, 2, {2, 1}, c, false}, {"x", F16, 1, {3}, x16, false}, {"y", F16, 0, {0}, y16, false}};
    node_model(&r, 16, "Where", args16, 3, "out");
    RCHECK_OK(&r, run(&r));
    uint16_t want16[6] = {0x3c00, 0x4000, 0x4200, 0xbc00, 0xbc00, 0xbc00};
    RCHECK(&r, output_is(&r.y[0], F16, 2, (int64_t[]){2, 3}, want16));
    run_free(&r);

    uint8_t xb[3] = {1, 1, 0}, yb[1] = {0};
    Arg argsb[3] = {{"c", BOOL, 2, {2, 1}, c, false}, {"x", BOOL, 1, {3}, xb, false}, {"y", BOOL, 0, {0}, yb, true}};
    node_model(&r, 16, "Where", argsb, 3, "out");
    RCHECK_OK(&r, run(&r));
    uint8_t wantb[6] = {1, 1, 0, 0, 0, 0};
    RCHECK(&r, output_is(&r.y[0], BOOL, 2, (int64_t[]){2, 3}, wantb));
    run_free(&r);

    /* The condition must be bool; x and y must agree; shapes must broadcast. */
    Arg bad[3] = {{"c", I64, 1, {3}, x64, false}, {"x", I64, 1, {3}, x64, false}, {"y", I64, 0, {0}, y64, false}};
    node_model(&r, 16, "Where", bad, 3, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    Arg bad2[3] = {{"c", BOOL, 1, {2}, c, false}, {"x", I64, 1, {3}, x64, false}, {"y", I64, 0, {0}, y64, false}};
    node_model(&r, 16, "Where", bad2, 3, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ---- PRelu ---- */

TEST(prelu_channel_slope_before_opset_7)
{
    /* X [1,2,3], slope [2]: per channel (dim 1) in opset 6... */
    float x[6] = {-1, 2, -3, -4, 5, -6}, s[2] = {0.5f, 0.25f};
    Arg args[2] = {{"x", F32, 3, {1, 2, 3}, x, false}, {"s", F32, 1, {2}, s, true}};
    Run r;
    node_model(&r, 6, "PRelu", args, 2, "out");
    RCHECK_OK(&r, run(&r));
    float want[6] = {-0.5f, 2, -1.5f, -1, 5, -1.5f};
    RCHECK(&r, floats_near(&r.y[0], want, 6, 0, 0));
    run_free(&r);
    /* ...but numpy-aligned to the end from opset 7, where [2] does not fit [1,2,3]. */
    node_model(&r, 7, "PRelu", args, 2, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);

    float s3[3] = {0.5f, 1, 2};
    Arg args3[2] = {{"x", F32, 3, {1, 2, 3}, x, false}, {"s", F32, 1, {3}, s3, false}};
    node_model(&r, 16, "PRelu", args3, 2, "out");
    RCHECK_OK(&r, run(&r));
    float want3[6] = {-0.5f, 2, -6, -2, 5, -12};
    RCHECK(&r, floats_near(&r.y[0], want3, 6, 0, 0));
    run_free(&r);

    /* The slope may not make the output bigger than X (unidirectional). */
    float big[6] = {0};
    Arg argsb[2] = {{"x", F32, 1, {3}, x, false}, {"s", F32, 2, {2, 3}, big, false}};
    node_model(&r, 16, "PRelu", argsb, 2, "out");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(prelu_integers)
{
    int32_t x[3] = {-3, 4, INT32_MIN}, s[1] = {-2};
    Arg args[2] = {{"x", I32, 1, {3}, x, false}, {"s", I32, 1, {1}, s, false}};
    Run r;
    node_model(&r, 9, "PRelu", args, 2, "out");
    RCHECK_OK(&r, run(&r));
    int32_t want[3] = {6, 4, 0}; /* INT32_MIN * -2 wraps to 0 */
    RCHECK(&r, output_is(&r.y[0], I32, 1, (int64_t[]){3}, want));
    run_free(&r);
}

/* ---- unary ---- */

static const float ux[5] = {-2, -0.5f, 0, 0.5f, 3};

/* Runs op on ux with one optional float attribute and compares. */
static void check_unary(int opset, const char *op, const char *attr, float value, const float *want, double rtol)
{
    Arg args[1] = {{"x", F32, 1, {5}, ux, false}};
    Run r;
    node_model(&r, opset, op, args, 1, "out");
    if (attr)
        ob_attr_float(r.b, r.node, attr, value);
    RCHECK_OK(&r, run(&r));
    RCHECK_MSG(&r, floats_near(&r.y[0], want, 5, rtol, 1e-7), "%s (opset %d)", op, opset);
    run_free(&r);
}

TEST(activation_family_values)
{
    check_unary(6, "Elu", NULL, 0, (float[]){-0.86466473f, -0.39346933f, 0, 0.5f, 3}, 1e-6);
    check_unary(6, "Elu", "alpha", 2, (float[]){-1.72932946f, -0.78693867f, 0, 0.5f, 3}, 1e-6);
    check_unary(6, "Selu", NULL, 0, (float[]){-1.52016652f, -0.69175816f, 0, 0.52535051f, 3.15210295f}, 1e-6);
    /* opset 1's defaults were rounded: 1.6732, 1.0507 */
    check_unary(1, "Selu", NULL, 0, (float[]){-1.52010763f, -0.69173139f, 0, 0.52534997f, 3.15209985f}, 1e-6);
    check_unary(12, "Celu", "alpha", 2, (float[]){-1.26424122f, -0.44239855f, 0, 0.5f, 3}, 1e-6);
    check_unary(1, "Softsign", NULL, 0, (float[]){-2.0f / 3, -1.0f / 3, 0, 1.0f / 3, 0.75f}, 1e-6);
    check_unary(10, "ThresholdedRelu", NULL, 0, (float[]){0, 0, 0, 0, 3}, 0);
    check_unary(10, "ThresholdedRelu", "alpha", 0.25f, (float[]){0, 0, 0, 0.5f, 3}, 0);
    check_unary(9, "Shrink", NULL, 0, (float[]){-2, 0, 0, 0, 3}, 0);
    check_unary(9, "Shrink", "bias", 0.25f, (float[]){-1.75f, 0, 0, 0, 2.75f}, 0);
}

TEST(softplus_does_not_overflow)
{
    float x[4] = {-100, 0, 1, 100};
    Arg args[1] = {{"x", F32, 1, {4}, x, false}};
    Run r;
    node_model(&r, 1, "Softplus", args, 1, "out");
    RCHECK_OK(&r, run(&r));
    float want[4] = {0, 0.69314718f, 1.31326169f, 100};
    RCHECK(&r, floats_near(&r.y[0], want, 4, 1e-6, 1e-40));
    run_free(&r);
}

TEST(trig_and_hyperbolic)
{
    check_unary(7, "Sin", NULL, 0, (float[]){-0.90929743f, -0.47942554f, 0, 0.47942554f, 0.14112001f}, 1e-6);
    check_unary(7, "Cos", NULL, 0, (float[]){-0.41614684f, 0.87758256f, 1, 0.87758256f, -0.98999250f}, 1e-6);
    check_unary(9, "Cosh", NULL, 0, (float[]){3.76219569f, 1.12762597f, 1, 1.12762597f, 10.06766200f}, 1e-6);
    check_unary(9, "Asinh", NULL, 0, (float[]){-1.44363548f, -0.48121183f, 0, 0.48121183f, 1.81844646f}, 1e-6);
    check_unary(7, "Atan", NULL, 0, (float[]){-1.10714872f, -0.46364761f, 0, 0.46364761f, 1.24904577f}, 1e-6);
    /* out of the domain: NaN */
    check_unary(7, "Asin", NULL, 0, (float[]){NAN, -0.52359878f, 0, 0.52359878f, NAN}, 1e-6);
    check_unary(9, "Acosh", NULL, 0, (float[]){NAN, NAN, NAN, NAN, 1.76274717f}, 1e-6);
}

TEST(round_half_to_even_and_sign)
{
    float x[8] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, -2.6f, NAN};
    Arg args[1] = {{"x", F32, 1, {8}, x, false}};
    Run r;
    node_model(&r, 11, "Round", args, 1, "out");
    RCHECK_OK(&r, run(&r));
    float want[8] = {0, 2, 2, -0.0f, -2, 2, -3, NAN};
    RCHECK(&r, floats_near(&r.y[0], want, 8, 0, 0));
    run_free(&r);

    node_model(&r, 13, "Sign", args, 1, "out");
    RCHECK_OK(&r, run(&r));
    float swant[8] = {1, 1, 1, -1, -1, 1, -1, NAN};
    RCHECK(&r, floats_near(&r.y[0], swant, 8, 0, 0));
    run_free(&r);

    int8_t ix[4] = {-128, 0, 5, -1};
    Arg iargs[1] = {{"x", I8, 1, {4}, ix, false}};
    node_model(&r, 9, "Sign", iargs, 1, "out");
    RCHECK_OK(&r, run(&r));
    int8_t iwant[4] = {-1, 0, 1, -1};
    RCHECK(&r, output_is(&r.y[0], I8, 1, (int64_t[]){4}, iwant));
    run_free(&r);
}

TEST(isnan_isinf_flags)
{
    float x[4] = {INFINITY, -INFINITY, NAN, 1};
    Arg args[1] = {{"x", F32, 1, {4}, x, false}};
    Run r;
    node_model(&r, 13, "IsNaN", args, 1, "out");
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, output_is(&r.y[0], BOOL, 1, (int64_t[]){4}, (uint8_t[]){0, 0, 1, 0}));
    run_free(&r);
    struct {
        int neg, pos;
        uint8_t want[4];
    } cases[] = {{1, 1, {1, 1, 0, 0}}, {0, 1, {1, 0, 0, 0}}, {1, 0, {0, 1, 0, 0}}, {0, 0, {0, 0, 0, 0}}};
    for (int k = 0; k < 4; k++) {
        node_model(&r, 10, "IsInf", args, 1, "out");
        ob_attr_int(r.b, r.node, "detect_negative", cases[k].neg);
        ob_attr_int(r.b, r.node, "detect_positive", cases[k].pos);
        RCHECK_OK(&r, run(&r));
        RCHECK_MSG(&r, output_is(&r.y[0], BOOL, 1, (int64_t[]){4}, cases[k].want), "case %d", k);
        run_free(&r);
    }
    /* double: DBL_MAX is finite (it must not go through float, where it would be inf). */
    double dx[2] = {DBL_MAX, -INFINITY};
    Arg dargs[1] = {{"x", F64, 1, {2}, dx, false}};
    node_model(&r, 10, "IsInf", dargs, 1, "out");
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, output_is(&r.y[0], BOOL, 1, (int64_t[]){2}, (uint8_t[]){0, 1}));
    run_free(&r);
}

TEST(integer_unary_forms)
{
    int32_t x[5] = {-7, -1, 0, 1, 7};
    Arg args[1] = {{"x", I32, 1, {5}, x, false}};
    Run r;
    node_model(&r, 13, "Erf", args, 1, "out");
    RCHECK_OK(&r, run(&r));
    int32_t ewant[5] = {-1, 0, 0, 0, 1};
    RCHECK(&r, output_is(&r.y[0], I32, 1, (int64_t[]){5}, ewant));
    run_free(&r);

    node_model(&r, 9, "Shrink", args, 1, "out");
    ob_attr_float(r.b, r.node, "lambd", 1.5f);
    ob_attr_float(r.b, r.node, "bias", 2);
    RCHECK_OK(&r, run(&r));
    int32_t swant[5] = {-5, 0, 0, 0, 5};
    RCHECK(&r, output_is(&r.y[0], I32, 1, (int64_t[]){5}, swant));
    run_free(&r);

    /* Unsigned Shrink never goes below zero's side: x - bias saturates at 0. */
    uint16_t ux16[3] = {1, 3, 65535};
    Arg uargs[1] = {{"x", U16, 1, {3}, ux16, false}};
    node_model(&r, 9, "Shrink", uargs, 1, "out");
    ob_attr_float(r.b, r.node, "lambd", 0.5f);
    ob_attr_float(r.b, r.node, "bias", 2);
    RCHECK_OK(&r, run(&r));
    uint16_t uwant[3] = {0, 1, 65533};
    RCHECK(&r, output_is(&r.y[0], U16, 1, (int64_t[]){3}, uwant));
    run_free(&r);

    /* Float-only ops refuse integers. */
    node_model(&r, 7, "Sin", args, 1, "out");
    RCHECK(&r, run(&r) != CRUN_OK);
    run_free(&r);
}

TEST(unary_on_double_and_float16)
{
    double dx[3] = {-1, 0.5, 2};
    Arg dargs[1] = {{"x", F64, 1, {3}, dx, false}};
    Run r;
    node_model(&r, 6, "Elu", dargs, 1, "out");
    RCHECK_OK(&r, run(&r));
    const double *dy = r.y[0].data;
    RCHECK(&r, r.y[0].dtype == F64 && fabs(dy[0] - expm1(-1.0)) < 1e-15 && dy[1] == 0.5 && dy[2] == 2);
    run_free(&r);

    uint16_t hx[3] = {0x3800, 0x3e00, 0xc100}; /* 0.5, 1.5, -2.5 */
    Arg hargs[1] = {{"x", F16, 1, {3}, hx, false}};
    node_model(&r, 11, "Round", hargs, 1, "out");
    RCHECK_OK(&r, run(&r));
    uint16_t hwant[3] = {0x0000, 0x4000, 0xc000}; /* 0, 2, -2 */
    RCHECK(&r, output_is(&r.y[0], F16, 1, (int64_t[]){3}, hwant));
    run_free(&r);
}
