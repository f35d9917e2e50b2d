/* test_tensor.c - the tensor-manipulation ops (tensor.c, tensor_make.c, tensor_select.c,
 * scatter.c, resize.c, layout.c, shape.c) against hand-checked values: every opset form,
 * edge cases the conformance data does not reach, string tensors, and the errors bad
 * attributes (CRUN_ERR_INVALID_MODEL) and bad data (CRUN_ERR_RUNTIME) must give. */
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "noderun.h"

#define F32 CRUN_DTYPE_FLOAT
#define F64 CRUN_DTYPE_DOUBLE
#define I64 CRUN_DTYPE_INT64
#define I32 CRUN_DTYPE_INT32
#define I8 CRUN_DTYPE_INT8
#define U8 CRUN_DTYPE_UINT8
#define BOOL CRUN_DTYPE_BOOL
#define STR CRUN_DTYPE_STRING

/* A one-node model whose n_out outputs are named y0, y1, ... */
static void node_model_n(Run *r, int opset, const char *op, const Arg *args, int n_args, int n_out)
{
    char outs[64] = "";
    for (int k = 0; k < n_out; k++)
        snprintf(outs + strlen(outs), sizeof outs - strlen(outs), "%sy%d", k ? "," : "", k);
    node_model(r, opset, op, args, n_args, outs);
}

/* Element i of an integer, bool or float tensor as int64. */
static int64_t elem_int(const crun_tensor *t, size_t i)
{
    switch (t->dtype) {
    case CRUN_DTYPE_INT64: return ((const int64_t *)t->data)[i];
    case CRUN_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    case CRUN_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case CRUN_DTYPE_UINT8:
    case CRUN_DTYPE_BOOL: return ((const uint8_t *)t->data)[i];
    case CRUN_DTYPE_FLOAT: return (int64_t)((const float *)t->data)[i];
    case CRUN_DTYPE_DOUBLE: return (int64_t)((const double *)t->data)[i];
    default: return INT64_MIN;
    }
}

static size_t numel(const crun_tensor *t) { return t->size_bytes / crun_dtype_size(t->dtype); }

/* Shape and values of an output, with a message naming the first difference. */
static bool ints_are(const crun_tensor *t, int rank, const int64_t *dims, const int64_t *want, size_t n)
{
    char s[128] = "";
    for (int i = 0; i < t->rank; i++)
        snprintf(s + strlen(s), sizeof s - strlen(s), "%lld ", (long long)t->dims[i]);
    if (!shape_is(t, rank, dims) || numel(t) != n) {
        fprintf(stderr, "  shape [%s] (%zu elements), expected %zu elements\n", s, numel(t), n);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (elem_int(t, i) != want[i]) {
            fprintf(stderr, "  element %zu = %lld, expected %lld\n", i, (long long)elem_int(t, i), (long long)want[i]);
            return false;
        }
    return true;
}

static bool floats_are(const crun_tensor *t, int rank, const int64_t *dims, const float *want, size_t n, double tol)
{
    if (!shape_is(t, rank, dims) || numel(t) != n || t->dtype != F32) {
        fprintf(stderr, "  wrong shape or type (rank %d, %zu elements)\n", t->rank, numel(t));
        return false;
    }
    const float *y = t->data;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)y[i] - (double)want[i]) <= tol)) {
            fprintf(stderr, "  element %zu = %.9g, expected %.9g\n", i, y[i], want[i]);
            return false;
        }
    return true;
}

static bool strings_are(const crun_tensor *t, const char *const *want, size_t n)
{
    if (t->dtype != STR || numel(t) != n)
        return false;
    const char *const *y = t->data;
    for (size_t i = 0; i < n; i++)
        if (strcmp(y[i], want[i]) != 0) {
            fprintf(stderr, "  string %zu = '%s', expected '%s'\n", i, y[i], want[i]);
            return false;
        }
    return true;
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define INTS(...) ((const int64_t[]){__VA_ARGS__})
#define FLOATS(...) ((const float[]){__VA_ARGS__})
#define NUM(...) (sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define NUMF(...) (sizeof((const float[]){__VA_ARGS__}) / sizeof(float))
/* CHECK_INTS(run, out index, rank, dims, values...) */
#define CHECK_INTS(r, k, rank, dims, ...) \
    RCHECK(r, ints_are(&(r)->y[k], rank, dims, INTS(__VA_ARGS__), NUM(__VA_ARGS__)))
#define CHECK_FLOATS_OUT(r, k, rank, dims, tol, ...) \
    RCHECK(r, floats_are(&(r)->y[k], rank, dims, FLOATS(__VA_ARGS__), NUMF(__VA_ARGS__), tol))

static const float x23[6] = {1, 2, 3, 4, 5, 6};

/* ---- Pad ---- */

TEST(pad_attribute_forms_before_opset_11)
{
    /* Pad-1 'paddings' and Pad-2 'pads' list all begins, then all ends. */
    const char *names[2] = {"paddings", "pads"};
    for (int v = 0; v < 2; v++) {
        Arg a[1] = {{"x", F32, 2, {2, 3}, x23, false}};
        Run r;
        node_model_n(&r, v == 0 ? 1 : 2, "Pad", a, 1, 1);
        ob_attr_ints(r.b, r.node, names[v], INTS(0, 1, 1, 0), 4);
        ob_attr_float(r.b, r.node, "value", 9);
        RCHECK_OK(&r, run(&r));
        CHECK_FLOATS_OUT(&r, 0, 2, DIMS(3, 4), 0, 9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9);
        run_free(&r);
    }
}

TEST(pad_reflect_and_edge_longer_than_the_axis)
{
    /* numpy: reflect mirrors periodically; a single element reflects onto itself. */
    int64_t x[3] = {1, 2, 3}, one[1] = {7};
    struct {
        const char *mode;
        const int64_t *x;
        int64_t n, pb, pe;
        int64_t want[12];
    } cases[] = {{"reflect", x, 3, 5, 4, {2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3}},
                 {"edge", x, 3, 5, 4, {1, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3}},
                 {"reflect", one, 1, 2, 1, {7, 7, 7, 7}}};
    for (int c = 0; c < 3; c++) {
        int64_t pads[2] = {cases[c].pb, cases[c].pe}, out = cases[c].n + cases[c].pb + cases[c].pe;
        Arg a[2] = {{"x", I64, 1, {cases[c].n}, cases[c].x, false}, {"pads", I64, 1, {2}, pads, true}};
        Run r;
        node_model_n(&r, 13, "Pad", a, 2, 1);
        ob_attr_string(r.b, r.node, "mode", cases[c].mode);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, ints_are(&r.y[0], 1, &out, cases[c].want, (size_t)out));
        run_free(&r);
    }
}

TEST(pad_negative_pads_crop_then_pad)
{
    /* Axis 0 loses its last row; axis 1 loses its first column and gains one at the end. */
    int64_t pads[4] = {0, -1, -1, 1};
    const char *modes[2] = {"constant", "edge"};
    float want[2][3] = {{2, 3, 0}, {2, 3, 3}};
    for (int m = 0; m < 2; m++) {
        Arg a[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"pads", I64, 1, {4}, pads, false}};
        Run r;
        node_model_n(&r, 11, "Pad", a, 2, 1);
        ob_attr_string(r.b, r.node, "mode", modes[m]);
        RCHECK_OK(&r, run(&r)); /* pads bound at run time: the step is dynamic */
        RCHECK(&r, floats_are(&r.y[0], 2, DIMS(1, 3), want[m], 3, 0));
        run_free(&r);
    }
}

TEST(pad_strings_with_constant_value)
{
    const char *x[2] = {"a", "b"}, *z[1] = {"z"};
    int64_t pads[2] = {1, 2};
    Arg a[3] = {{"x", STR, 1, {2}, x, false}, {"pads", I64, 1, {2}, pads, true}, {"v", STR, 0, {0}, z, false}};
    Run r;
    node_model_n(&r, 13, "Pad", a, 3, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"z", "a", "b", "z", "z"}, 5));
    run_free(&r);
    /* Without a value strings pad with "". */
    node_model_n(&r, 13, "Pad", a, 2, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"", "a", "b", "", ""}, 5));
    run_free(&r);
}

TEST(pad_rejects_bad_pads)
{
    int64_t three[3] = {1, 1, 1}, pads[2] = {1, 1};
    Arg a[2] = {{"x", F32, 1, {3}, x23, false}, {"pads", I64, 1, {3}, three, true}};
    Run r;
    node_model_n(&r, 13, "Pad", a, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    /* Nothing to reflect from an empty axis: bad pads values are data errors. */
    Arg e[2] = {{"x", F32, 1, {0}, x23, false}, {"pads", I64, 1, {2}, pads, true}};
    node_model_n(&r, 13, "Pad", e, 2, 1);
    ob_attr_string(r.b, r.node, "mode", "reflect");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    pads[0] = -2; /* crops more than the axis has */
    Arg c[2] = {{"x", F32, 1, {1}, x23, false}, {"pads", I64, 1, {2}, pads, false}};
    node_model_n(&r, 13, "Pad", c, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    node_model_n(&r, 13, "Pad", e, 2, 1);
    ob_attr_string(r.b, r.node, "mode", "wrap-around");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ---- Expand, Tile ---- */

TEST(expand_both_ways_and_at_run_time)
{
    /* [3,1] with shape [2,1,4]: the 1 in shape keeps x's 3. */
    float x[3] = {1, 2, 3};
    int64_t shape[3] = {2, 1, 4};
    for (int constant = 0; constant < 2; constant++) {
        Arg a[2] = {{"x", F32, 2, {3, 1}, x, false}, {"shape", I64, 1, {3}, shape, constant == 1}};
        Run r;
        node_model_n(&r, 13, "Expand", a, 2, 1);
        RCHECK_OK(&r, run(&r));
        CHECK_FLOATS_OUT(&r, 0, 3, DIMS(2, 3, 4), 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3,
                         3, 3);
        run_free(&r);
    }
    int64_t bad[2] = {2, 2};
    Arg a[2] = {{"x", F32, 2, {3, 1}, x, false}, {"shape", I64, 1, {2}, bad, true}};
    Run r;
    node_model_n(&r, 8, "Expand", a, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
}

TEST(expand_and_tile_strings)
{
    const char *x[2] = {"p", "q"};
    int64_t shape[2] = {2, 2}, reps[1] = {3};
    Arg a[2] = {{"x", STR, 1, {2}, x, false}, {"shape", I64, 1, {2}, shape, true}};
    Run r;
    node_model_n(&r, 13, "Expand", a, 2, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"p", "q", "p", "q"}, 4));
    run_free(&r);
    Arg t[2] = {{"x", STR, 1, {2}, x, false}, {"r", I64, 1, {1}, reps, true}};
    node_model_n(&r, 13, "Tile", t, 2, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"p", "q", "p", "q", "p", "q"}, 6));
    run_free(&r);
}

TEST(tile_repeats_zero_negative_and_opset_1)
{
    int8_t x[6] = {1, 2, 3, 4, 5, 6};
    int64_t reps[2] = {2, 0};
    Arg a[2] = {{"x", I8, 2, {2, 3}, x, false}, {"r", I64, 1, {2}, reps, true}};
    Run r;
    node_model_n(&r, 13, "Tile", a, 2, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, shape_is(&r.y[0], 2, DIMS(4, 0)));
    run_free(&r);
    reps[1] = -1;
    node_model_n(&r, 13, "Tile", a, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    /* Tile-1: `tiles` copies along `axis` (both inputs). */
    int64_t tiles[1] = {2}, axis[1] = {1};
    Arg o[3] = {{"x", I8, 2, {2, 3}, x, false}, {"t", I64, 1, {1}, tiles, true}, {"a", I64, 1, {1}, axis, true}};
    node_model_n(&r, 1, "Tile", o, 3, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(2, 6), 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6);
    run_free(&r);
}

/* ---- Split ---- */

TEST(split_every_opset_form)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t sizes[2] = {1, 5};
    /* opset 2 and 11: attribute; 1 and 13: input; none: equal parts. */
    for (int form = 0; form < 5; form++) {
        int opset = (int[]){2, 11, 1, 13, 13}[form];
        Arg a[2] = {{"x", F32, 2, {1, 6}, x, false}, {"s", I64, 1, {2}, sizes, form == 2}};
        Run r;
        node_model_n(&r, opset, "Split", a, form == 2 || form == 3 ? 2 : 1, 2);
        ob_attr_int(r.b, r.node, "axis", -1);
        if (form < 2)
            ob_attr_ints(r.b, r.node, "split", INTS(2, 4), 2);
        RCHECK_OK(&r, run(&r));
        int64_t n0 = form < 2 ? 2 : form < 4 ? 1 : 3;
        RCHECK(&r, shape_is(&r.y[0], 2, DIMS(1, n0)) && shape_is(&r.y[1], 2, DIMS(1, 6 - n0)));
        RCHECK(&r, ((const float *)r.y[0].data)[0] == 1 && ((const float *)r.y[1].data)[0] == (float)(n0 + 1));
        run_free(&r);
    }
}

TEST(split_rejects_uneven_and_wrong_sizes)
{
    float x[5] = {0};
    int64_t sizes[2] = {2, 2};
    Arg a[2] = {{"x", F32, 1, {5}, x, false}, {"s", I64, 1, {2}, sizes, true}};
    Run r;
    node_model_n(&r, 13, "Split", a, 1, 2); /* 5 into 2 equal parts */
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    node_model_n(&r, 13, "Split", a, 2, 2); /* sizes add up to 4 */
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    node_model_n(&r, 11, "Split", a, 1, 2); /* the same as an attribute: a model error */
    ob_attr_ints(r.b, r.node, "split", sizes, 2);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ---- DepthToSpace, SpaceToDepth ---- */

TEST(depth_to_space_modes_and_space_to_depth_inverse)
{
    /* x [1, 8, 1, 1] = 0..7, blocksize 2: output [1, 2, 2, 2]. DCR takes channel
     * (b1*2 + b2)*2 + c, CRD c*4 + b1*2 + b2. */
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const char *modes[2] = {"DCR", "CRD"};
    float want[2][8] = {{0, 2, 4, 6, 1, 3, 5, 7}, {0, 1, 2, 3, 4, 5, 6, 7}};
    for (int m = 0; m < 2; m++) {
        Arg a[1] = {{"x", F32, 4, {1, 8, 1, 1}, x, false}};
        Run r;
        node_model_n(&r, 13, "DepthToSpace", a, 1, 1);
        ob_attr_int(r.b, r.node, "blocksize", 2);
        ob_attr_string(r.b, r.node, "mode", modes[m]);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, floats_are(&r.y[0], 4, DIMS(1, 2, 2, 2), want[m], 8, 0));
        run_free(&r);
    }
    /* SpaceToDepth undoes DCR on an odd shape [2, 3, 4, 6], blocksize 2. */
    float big[144];
    for (int i = 0; i < 144; i++)
        big[i] = (float)i;
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 4, DIMS(2, 3, 4, 6), NULL);
    Onnx__NodeProto *n1 = ob_node(b, "SpaceToDepth", "x", "t");
    Onnx__NodeProto *n2 = ob_node(b, "DepthToSpace", "t", "y");
    ob_attr_int(b, n1, "blocksize", 2);
    ob_attr_int(b, n2, "blocksize", 2);
    ob_output(b, "y");
    float y[144];
    TIn in = {F32, 4, {2, 3, 4, 6}, big};
    long n = run_f32(b, &in, 1, y, 144, NULL);
    ob_free(b);
    CHECK(n == 144);
    CHECK_FLOATS(y, big, 144, 0, 0);
}

TEST(depth_to_space_rejects_bad_shapes)
{
    float x[12] = {0};
    Arg a[1] = {{"x", F32, 4, {1, 3, 2, 2}, x, false}};
    Run r;
    node_model_n(&r, 13, "DepthToSpace", a, 1, 1);
    ob_attr_int(r.b, r.node, "blocksize", 2);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
    node_model_n(&r, 13, "SpaceToDepth", a, 1, 1);
    ob_attr_int(r.b, r.node, "blocksize", 0);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ---- ReverseSequence, Trilu, EyeLike ---- */

TEST(reverse_sequence_lengths_checked)
{
    /* time-major [3, 2]: batch 0 reverses 3 steps, batch 1 none. */
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t lens[2] = {3, 0};
    Arg a[2] = {{"x", F32, 2, {3, 2}, x, false}, {"l", I64, 1, {2}, lens, false}};
    Run r;
    node_model_n(&r, 10, "ReverseSequence", a, 2, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(3, 2), 0, 5, 2, 3, 4, 1, 6);
    run_free(&r);
    lens[1] = 4;
    node_model_n(&r, 10, "ReverseSequence", a, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    node_model_n(&r, 10, "ReverseSequence", a, 2, 1);
    ob_attr_int(r.b, r.node, "batch_axis", 0);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL); /* both axes 0 */
    run_free(&r);
}

TEST(trilu_extreme_k_and_batches)
{
    int64_t x[12];
    for (int i = 0; i < 12; i++)
        x[i] = i + 1;
    struct {
        int upper;
        int64_t k;
        int64_t want[12];
    } cases[] = {{1, INT64_MAX, {0}},
                 {0, INT64_MAX, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
                 {1, INT64_MIN, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
                 {1, 1, {0, 2, 3, 0, 0, 6, 0, 8, 9, 0, 0, 12}},
                 {0, -1, {0, 0, 0, 4, 0, 0, 0, 0, 0, 10, 0, 0}}};
    for (int c = 0; c < 5; c++) {
        /* [2, 2, 3]: two 2x3 matrices. */
        Arg a[2] = {{"x", I64, 3, {2, 2, 3}, x, false}, {"k", I64, 0, {0}, &cases[c].k, false}};
        Run r;
        node_model_n(&r, 14, "Trilu", a, 2, 1);
        ob_attr_int(r.b, r.node, "upper", cases[c].upper);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, ints_are(&r.y[0], 3, DIMS(2, 2, 3), cases[c].want, 12));
        run_free(&r);
    }
}

TEST(eyelike_types_and_offsets)
{
    float x[6] = {0};
    Arg a[1] = {{"x", F32, 2, {2, 3}, x, false}};
    Run r;
    node_model_n(&r, 9, "EyeLike", a, 1, 1);
    ob_attr_int(r.b, r.node, "k", 2);
    ob_attr_int(r.b, r.node, "dtype", CRUN_DTYPE_INT32);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, r.y[0].dtype == I32);
    CHECK_INTS(&r, 0, 2, DIMS(2, 3), 0, 0, 1, 0, 0, 0);
    run_free(&r);
    node_model_n(&r, 9, "EyeLike", a, 1, 1);
    ob_attr_int(r.b, r.node, "k", -100);
    ob_attr_int(r.b, r.node, "dtype", CRUN_DTYPE_BOOL);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(2, 3), 0, 0, 0, 0, 0, 0);
    run_free(&r);
    node_model_n(&r, 9, "EyeLike", a, 1, 1);
    ob_attr_int(r.b, r.node, "dtype", CRUN_DTYPE_STRING);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ---- Range, ConstantOfShape, OneHot, Size ---- */

/* Range(s, l, d) of one type; the inputs are graph inputs (the step is dynamic) or
 * constants (folded while planning). */
#define RANGE_RUN(r, t, s, l, d, constant) \
    Arg args_[3] = {{"s", t, 0, {0}, &(s), constant}, {"l", t, 0, {0}, &(l), constant}, \
                    {"d", t, 0, {0}, &(d), constant}}; \
    node_model_n(r, 11, "Range", args_, 3, 1)

TEST(range_counts_exactly_and_wraps)
{
    Run r;
    {
        /* 2^64 - 1 spanned in steps of 2^63 - 1: three elements, the last wrapped. */
        int64_t s = INT64_MIN, l = INT64_MAX, d = INT64_MAX;
        RANGE_RUN(&r, I64, s, l, d, false);
        RCHECK_OK(&r, run(&r));
        CHECK_INTS(&r, 0, 1, DIMS(3), INT64_MIN, -1, INT64_MAX - 1);
        run_free(&r);
        d = 0; /* args_ points at d */
        node_model_n(&r, 11, "Range", args_, 3, 1);
        RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
        run_free(&r);
    }
    {
        int32_t s = 10, l = 4, d = -3;
        RANGE_RUN(&r, I32, s, l, d, true);
        RCHECK_OK(&r, run(&r));
        CHECK_INTS(&r, 0, 1, DIMS(2), 10, 7);
        run_free(&r);
    }
    {
        float s = 1, l = 2, d = 0.3f;
        RANGE_RUN(&r, F32, s, l, d, false);
        RCHECK_OK(&r, run(&r));
        CHECK_FLOATS_OUT(&r, 0, 1, DIMS(4), 1e-6, 1, 1.3f, 1.6f, 1.9f);
        run_free(&r);
    }
    {
        double s = 5, l = 1, d = 1; /* empty */
        RANGE_RUN(&r, F64, s, l, d, false);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, shape_is(&r.y[0], 1, DIMS(0)));
        run_free(&r);
    }
    {
        int32_t s = 0;
        int64_t l = 3;
        Arg a[3] = {{"s", I32, 0, {0}, &s, true}, {"l", I64, 0, {0}, &l, true}, {"d", I32, 0, {0}, &s, true}};
        node_model_n(&r, 11, "Range", a, 3, 1);
        RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
        run_free(&r);
    }
}

TEST(constant_of_shape_values_and_scalar)
{
    int64_t shape[2] = {2, 3};
    Arg a[1] = {{"s", I64, 1, {2}, shape, false}};
    Run r;
    node_model_n(&r, 9, "ConstantOfShape", a, 1, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(2, 3), 0, 0, 0, 0, 0, 0, 0);
    run_free(&r);
    /* An empty shape gives a scalar. */
    int64_t seven = 7;
    Arg e[1] = {{"s", I64, 1, {0}, shape, false}};
    node_model_n(&r, 9, "ConstantOfShape", e, 1, 1);
    ob_attr_tensor(r.b, r.node, "value", ob_tensor(r.b, "value", I64, 1, DIMS(1), &seven));
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, r.y[0].rank == 0 && r.y[0].dtype == I64 && *(const int64_t *)r.y[0].data == 7);
    run_free(&r);
    shape[1] = -3;
    node_model_n(&r, 9, "ConstantOfShape", a, 1, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
}

TEST(onehot_out_of_range_axis_and_strings)
{
    int64_t ind[4] = {0, -1, 5, 3};
    float depth = 3.7f; /* truncates to 3 */
    int32_t vals[2] = {0, 1};
    Arg a[3] = {{"i", I64, 1, {4}, ind, false}, {"d", F32, 0, {0}, &depth, false}, {"v", I32, 1, {2}, vals, true}};
    Run r;
    node_model_n(&r, 11, "OneHot", a, 3, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(4, 3), 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0);
    run_free(&r);
    node_model_n(&r, 11, "OneHot", a, 3, 1);
    ob_attr_int(r.b, r.node, "axis", 0);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(3, 4), 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
    run_free(&r);
    const char *sv[2] = {"off", "on"};
    Arg s[3] = {{"i", I64, 1, {2}, ind, false}, {"d", F32, 0, {0}, &depth, true}, {"v", STR, 1, {2}, sv, false}};
    node_model_n(&r, 11, "OneHot", s, 3, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"on", "off", "off", "off", "off", "on"}, 6));
    run_free(&r);
    depth = 0;
    node_model_n(&r, 11, "OneHot", a, 3, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
}

TEST(size_of_any_shape)
{
    Arg a[1] = {{"x", F32, 3, {3, 1, 2}, x23, false}};
    Run r;
    node_model_n(&r, 1, "Size", a, 1, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, r.y[0].rank == 0 && r.y[0].dtype == I64 && *(const int64_t *)r.y[0].data == 6);
    run_free(&r);
    Arg b[1] = {{"x", F32, 2, {2, 2}, x23, false}};
    node_model_n(&r, 13, "Size", b, 1, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, *(const int64_t *)r.y[0].data == 4);
    run_free(&r);
}

/* ---- NonZero, Compress, Unique ---- */

TEST(nonzero_zero_kinds_scalars_strings)
{
    float f[4] = {0, -0.0f, NAN, 2};
    Arg a[1] = {{"x", F32, 1, {4}, f, false}};
    Run r;
    node_model_n(&r, 13, "NonZero", a, 1, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(1, 2), 2, 3);
    run_free(&r);
    int32_t m[4] = {0, 1, 2, 0};
    Arg b[1] = {{"x", I32, 2, {2, 2}, m, false}};
    node_model_n(&r, 9, "NonZero", b, 1, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(2, 2), 0, 1, 1, 0);
    run_free(&r);
    int64_t five = 5;
    Arg c[1] = {{"x", I64, 0, {0}, &five, false}};
    node_model_n(&r, 13, "NonZero", c, 1, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(1, 1), 0);
    run_free(&r);
    const char *s[3] = {"", "a", ""};
    Arg d[1] = {{"x", STR, 1, {3}, s, false}};
    node_model_n(&r, 13, "NonZero", d, 1, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 2, DIMS(1, 1), 1);
    run_free(&r);
    float z[3] = {0};
    Arg e[1] = {{"x", F32, 1, {3}, z, false}};
    node_model_n(&r, 13, "NonZero", e, 1, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, shape_is(&r.y[0], 2, DIMS(1, 0)));
    run_free(&r);
}

TEST(compress_short_condition_flatten_and_bad_condition)
{
    uint8_t c2[2] = {0, 1}, c4[4] = {1, 0, 0, 1}, bad[4] = {0, 0, 0, 1};
    Arg a[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"c", BOOL, 1, {2}, c2, false}};
    Run r;
    node_model_n(&r, 11, "Compress", a, 2, 1);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(2, 1), 0, 2, 5);
    run_free(&r);
    Arg b[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"c", BOOL, 1, {4}, c4, false}};
    node_model_n(&r, 9, "Compress", b, 2, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 1, DIMS(2), 0, 1, 4);
    run_free(&r);
    Arg c[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"c", BOOL, 1, {4}, bad, false}};
    node_model_n(&r, 11, "Compress", c, 2, 1);
    ob_attr_int(r.b, r.node, "axis", -1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
}

TEST(unique_axis_sorted_and_unsorted)
{
    /* Columns (1,0) (3,5) (1,0) (2,6). */
    int64_t x[8] = {1, 3, 1, 2, 0, 5, 0, 6};
    for (int sorted = 0; sorted < 2; sorted++) {
        Arg a[1] = {{"x", I64, 2, {2, 4}, x, false}};
        Run r;
        node_model_n(&r, 11, "Unique", a, 1, 4);
        ob_attr_int(r.b, r.node, "axis", -1);
        ob_attr_int(r.b, r.node, "sorted", sorted);
        RCHECK_OK(&r, run(&r));
        if (sorted) {
            CHECK_INTS(&r, 0, 2, DIMS(2, 3), 1, 2, 3, 0, 6, 5);
            CHECK_INTS(&r, 1, 1, DIMS(3), 0, 3, 1);
            CHECK_INTS(&r, 2, 1, DIMS(4), 0, 2, 0, 1);
        } else {
            CHECK_INTS(&r, 0, 2, DIMS(2, 3), 1, 3, 2, 0, 5, 6);
            CHECK_INTS(&r, 1, 1, DIMS(3), 0, 1, 3);
            CHECK_INTS(&r, 2, 1, DIMS(4), 0, 1, 0, 2);
        }
        CHECK_INTS(&r, 3, 1, DIMS(3), 2, 1, 1);
        run_free(&r);
    }
}

TEST(unique_nan_strings_empty)
{
    float f[3] = {NAN, 1, NAN};
    Arg a[1] = {{"x", F32, 1, {3}, f, false}};
    Run r;
    node_model_n(&r, 11, "Unique", a, 1, 4);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, numel(&r.y[0]) == 2 && ((const float *)r.y[0].data)[0] == 1 && isnan(((const float *)r.y[0].data)[1]));
    CHECK_INTS(&r, 3, 1, DIMS(2), 1, 2);
    run_free(&r);
    const char *s[3] = {"b", "a", "b"};
    Arg b[1] = {{"x", STR, 1, {3}, s, false}};
    node_model_n(&r, 11, "Unique", b, 1, 3);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"a", "b"}, 2));
    CHECK_INTS(&r, 2, 1, DIMS(3), 1, 0, 1);
    run_free(&r);
    Arg c[1] = {{"x", F32, 1, {0}, f, false}};
    node_model_n(&r, 11, "Unique", c, 1, 2);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, shape_is(&r.y[0], 1, DIMS(0)) && shape_is(&r.y[1], 1, DIMS(0)));
    run_free(&r);
}

/* ---- GatherElements, GatherND, ScatterElements, Scatter, ScatterND ---- */

TEST(gather_elements_int32_negative_and_out_of_range)
{
    /* axis 1 of [2, 3] with indices [2, 2]: indices may be shorter than data off the axis. */
    int32_t ind[4] = {2, -3, 0, -1};
    Arg a[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"i", I32, 2, {2, 2}, ind, false}};
    Run r;
    node_model_n(&r, 13, "GatherElements", a, 2, 1);
    ob_attr_int(r.b, r.node, "axis", -1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(2, 2), 0, 3, 1, 4, 6);
    run_free(&r);
    ind[2] = 3;
    node_model_n(&r, 13, "GatherElements", a, 2, 1);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    int32_t wide[3] = {0, 0, 0}; /* indices wider than data off the axis */
    Arg w[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"i", I32, 2, {3, 1}, wide, false}};
    node_model_n(&r, 13, "GatherElements", w, 2, 1);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(gather_nd_batch_dims_and_errors)
{
    /* data [2, 3], batch_dims 1, indices [2, 1]: one element per batch. */
    int64_t ind[2] = {2, -3};
    Arg a[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"i", I64, 2, {2, 1}, ind, false}};
    Run r;
    node_model_n(&r, 12, "GatherND", a, 2, 1);
    ob_attr_int(r.b, r.node, "batch_dims", 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 1, DIMS(2), 0, 3, 4);
    run_free(&r);
    /* batch_dims 0: rows. */
    node_model_n(&r, 11, "GatherND", a, 2, 1);
    ind[0] = 1;
    ind[1] = -2;
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(2, 3), 0, 4, 5, 6, 1, 2, 3);
    run_free(&r);
    ind[0] = 2;
    node_model_n(&r, 11, "GatherND", a, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    int64_t three[3] = {0, 0, 0};
    Arg b[2] = {{"x", F32, 2, {2, 3}, x23, false}, {"i", I64, 1, {3}, three, false}};
    node_model_n(&r, 13, "GatherND", b, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(scatter_elements_reductions_and_duplicates)
{
    /* All updates hit element 1 of a row of 3: none keeps the last, the others combine. */
    int32_t data[3] = {10, 20, 30}, upd[3] = {2, 3, 4};
    int64_t ind[3] = {1, -2, 1};
    const char *red[5] = {"none", "add", "mul", "max", "min"};
    int64_t want[5] = {4, 29, 480, 20, 2};
    for (int k = 0; k < 5; k++) {
        Arg a[3] = {{"x", I32, 1, {3}, data, false}, {"i", I64, 1, {3}, ind, false}, {"u", I32, 1, {3}, upd, false}};
        Run r;
        node_model_n(&r, 16, "ScatterElements", a, 3, 1);
        ob_attr_string(r.b, r.node, "reduction", red[k]);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, ints_are(&r.y[0], 1, DIMS(3), (int64_t[]){10, want[k], 30}, 3));
        run_free(&r);
    }
    /* Integer reductions wrap. */
    int32_t big[1] = {INT32_MAX}, one[1] = {1};
    int64_t zero[1] = {0};
    Arg w[3] = {{"x", I32, 1, {1}, big, false}, {"i", I64, 1, {1}, zero, false}, {"u", I32, 1, {1}, one, false}};
    Run r;
    node_model_n(&r, 16, "ScatterElements", w, 3, 1);
    ob_attr_string(r.b, r.node, "reduction", "add");
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 1, DIMS(1), INT32_MIN);
    run_free(&r);
}

TEST(scatter_old_name_2d_and_errors)
{
    /* Scatter-9 = ScatterElements without reduction. */
    float upd[2] = {-1, -2};
    int64_t ind[2] = {1, 0};
    Arg a[3] = {{"x", F32, 2, {2, 3}, x23, false}, 
                {"i", I64, 2, {1, 2}, ind, false}, {"u", F32, 2, {1, 2}, upd, false}};
    Run r;
    node_model_n(&r, 9, "Scatter", a, 3, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(2, 3), 0, 1, -2, 3, -1, 5, 6);
    run_free(&r);
    ind[1] = 2;
    node_model_n(&r, 11, "ScatterElements", a, 3, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
    uint8_t b[3] = {1, 0, 1};
    Arg c[3] = {{"x", BOOL, 1, {3}, b, false}, {"i", I64, 1, {1}, ind, false}, {"u", BOOL, 1, {1}, b, false}};
    node_model_n(&r, 16, "ScatterElements", c, 3, 1);
    ob_attr_string(r.b, r.node, "reduction", "add");
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(scatter_nd_slices_duplicates_strings)
{
    /* Rows of [3, 2] addressed by 1-tuples; add combines the duplicate row 0. */
    float data[6] = {1, 1, 2, 2, 3, 3}, upd[6] = {10, 20, 30, 40, 50, 60};
    int64_t ind[3] = {0, -1, 0};
    Arg a[3] = {{"x", F32, 2, {3, 2}, data, false}, 
                {"i", I64, 2, {3, 1}, ind, false}, {"u", F32, 2, {3, 2}, upd, false}};
    Run r;
    node_model_n(&r, 16, "ScatterND", a, 3, 1);
    ob_attr_string(r.b, r.node, "reduction", "add");
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(3, 2), 0, 61, 81, 2, 2, 33, 43);
    run_free(&r);
    const char *s[3] = {"a", "b", "c"}, *u[1] = {"z"};
    int64_t at[1] = {1};
    Arg b[3] = {{"x", STR, 1, {3}, s, false}, {"i", I64, 2, {1, 1}, at, false}, {"u", STR, 1, {1}, u, false}};
    node_model_n(&r, 11, "ScatterND", b, 3, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"a", "z", "c"}, 3));
    run_free(&r);
    at[0] = 3;
    node_model_n(&r, 11, "ScatterND", b, 3, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_RUNTIME);
    run_free(&r);
}

/* ---- layout and shape ops on strings (values outside the arena) ---- */

TEST(layout_ops_move_strings)
{
    const char *s[6] = {"a", "b", "c", "d", "e", "f"};
    Run r;
    Arg a[1] = {{"x", STR, 2, {2, 3}, s, false}};
    node_model_n(&r, 13, "Transpose", a, 1, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"a", "d", "b", "e", "c", "f"}, 6));
    run_free(&r);
    Arg c[2] = {{"x", STR, 2, {2, 3}, s, false}, {"y", STR, 2, {2, 3}, s, false}};
    node_model_n(&r, 13, "Concat", c, 2, 1);
    ob_attr_int(r.b, r.node, "axis", 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"a", "b", "c", "a", "b", "c", "d", "e", "f", "d", "e", "f"}, 12));
    run_free(&r);
    int64_t st[1] = {-1}, en[1] = {INT64_MIN}, ax[1] = {1}, sp[1] = {-2};
    Arg l[5] = {{"x", STR, 2, {2, 3}, s, false}, {"s", I64, 1, {1}, st, true}, {"e", I64, 1, {1}, en, true},
                {"a", I64, 1, {1}, ax, true}, {"p", I64, 1, {1}, sp, true}};
    node_model_n(&r, 13, "Slice", l, 5, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"c", "a", "f", "d"}, 4));
    run_free(&r);
    int64_t gi[2] = {1, 0};
    Arg g[2] = {{"x", STR, 2, {2, 3}, s, false}, {"i", I64, 1, {2}, gi, true}};
    node_model_n(&r, 13, "Gather", g, 2, 1);
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"d", "e", "f", "a", "b", "c"}, 6));
    run_free(&r);
    int64_t shape[1] = {6};
    Arg v[2] = {{"x", STR, 2, {2, 3}, s, false}, {"s", I64, 1, {1}, shape, true}};
    const char *view_ops[3] = {"Identity", "Reshape", "Flatten"};
    for (int k = 0; k < 3; k++) {
        node_model_n(&r, 13, view_ops[k], v, k == 1 ? 2 : 1, 1);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, strings_are(&r.y[0], s, 6));
        run_free(&r);
    }
}

/* ---- Resize, Upsample ---- */

/* A list-of-floats attribute (the builder has no helper): a float attribute turned into
 * a list of v, which must outlive the builder. */
static void attr_floats(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, float *v, size_t count)
{
    ob_attr_float(b, n, name, 0);
    Onnx__AttributeProto *a = n->attribute[n->n_attribute - 1];
    a->has_f = 0;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    a->n_floats = count;
    a->floats = v;
}

TEST(resize_opset_10_rounds_nearest_like_onnxruntime)
{
    /* Resize-10: asymmetric coordinates; nearest floors when upsampling, ceils when
     * downsampling (x = 1 / 0.6 = 1.67 reads element 2). */
    float x[4] = {1, 2, 3, 4}, down[4] = {1, 1, 1, 0.6f}, up[4] = {1, 1, 1, 2};
    Arg a[2] = {{"x", F32, 4, {1, 1, 1, 4}, x, false}, {"s", F32, 1, {4}, down, true}};
    Run r;
    node_model_n(&r, 10, "Resize", a, 2, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 4, DIMS(1, 1, 1, 2), 0, 1, 3);
    run_free(&r);
    a[1].data = up;
    node_model_n(&r, 10, "Resize", a, 2, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 4, DIMS(1, 1, 1, 8), 0, 1, 1, 2, 2, 3, 3, 4, 4);
    run_free(&r);
    node_model_n(&r, 10, "Resize", a, 2, 1);
    ob_attr_string(r.b, r.node, "mode", "cubic"); /* cubic came with opset 11 */
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(upsample_attribute_forms)
{
    /* Upsample-7: scales attribute, linear, asymmetric coordinates clamped at the end. */
    float x[4] = {1, 2, 3, 4};
    Arg a[1] = {{"x", F32, 2, {2, 2}, x, false}};
    Run r;
    node_model_n(&r, 7, "Upsample", a, 1, 1);
    ob_attr_string(r.b, r.node, "mode", "linear");
    static float scales[2] = {1, 2};
    attr_floats(r.b, r.node, "scales", scales, 2);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(2, 4), 1e-6, 1, 1.5f, 2, 2, 3, 3.5f, 4, 4);
    run_free(&r);
    /* Upsample-1: height_scale and width_scale, 'bilinear'. */
    float y[2] = {1, 3};
    Arg b[1] = {{"x", F32, 4, {1, 1, 2, 1}, y, false}};
    node_model_n(&r, 1, "Upsample", b, 1, 1);
    ob_attr_string(r.b, r.node, "mode", "bilinear");
    ob_attr_float(r.b, r.node, "height_scale", 2);
    ob_attr_float(r.b, r.node, "width_scale", 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 4, DIMS(1, 1, 4, 1), 1e-6, 1, 2, 3, 3);
    run_free(&r);
    /* Upsample-9: scales input. */
    float s9[4] = {1, 1, 2, 1};
    Arg c[2] = {{"x", F32, 4, {1, 1, 2, 1}, y, false}, {"s", F32, 1, {4}, s9, true}};
    node_model_n(&r, 9, "Upsample", c, 2, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 4, DIMS(1, 1, 4, 1), 0, 1, 1, 3, 3);
    run_free(&r);
}

TEST(resize_linear_integers_round)
{
    uint8_t x[2] = {0, 255};
    int64_t sizes[1] = {4};
    Arg a[4] = {{"x", U8, 1, {2}, x, false}, {NULL, F32, 0, {0}, NULL, false}, {NULL, F32, 0, {0}, NULL, false},
                {"sz", I64, 1, {1}, sizes, true}};
    Run r;
    node_model_n(&r, 13, "Resize", a, 4, 1);
    ob_attr_string(r.b, r.node, "mode", "linear");
    RCHECK_OK(&r, run(&r));
    CHECK_INTS(&r, 0, 1, DIMS(4), 0, 64, 191, 255);
    run_free(&r);
}

TEST(resize_sizes_at_run_time_and_strings)
{
    const char *s[2] = {"a", "b"};
    int64_t sizes[1] = {5};
    float none[1] = {0};
    /* Opset 11: roi and scales present but empty; sizes bound at run time (dynamic step). */
    Arg a[4] = {{"x", STR, 1, {2}, s, false}, {"roi", F32, 1, {0}, none, true}, {"sc", F32, 1, {0}, none, true},
                {"sz", I64, 1, {1}, sizes, false}};
    Run r;
    node_model_n(&r, 11, "Resize", a, 4, 1);
    ob_attr_string(r.b, r.node, "coordinate_transformation_mode", "asymmetric");
    ob_attr_string(r.b, r.node, "nearest_mode", "floor");
    RCHECK_OK(&r, run(&r));
    RCHECK(&r, strings_are(&r.y[0], (const char *[]){"a", "a", "a", "b", "b"}, 5));
    run_free(&r);
    /* Both scales and sizes. */
    float sc[1] = {2};
    Arg b[4] = {{"x", STR, 1, {2}, s, false}, {NULL, F32, 0, {0}, NULL, false}, {"sc", F32, 1, {1}, sc, true},
                {"sz", I64, 1, {1}, sizes, true}};
    node_model_n(&r, 13, "Resize", b, 4, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

TEST(resize_tf_crop_and_resize_extrapolates)
{
    /* roi [0.5, 1.5] of 4 elements at 3 points: 1.5, 3, 4.5 (outside: the value 9). */
    float x[4] = {1, 2, 3, 4}, roi[2] = {0.5f, 1.5f};
    int64_t sizes[1] = {3};
    Arg a[4] = {{"x", F32, 1, {4}, x, false}, {"roi", F32, 1, {2}, roi, false}, {NULL, F32, 0, {0}, NULL, false},
                {"sz", I64, 1, {1}, sizes, true}};
    const char *modes[2] = {"nearest", "linear"};
    float want[2][3] = {{2, 4, 9}, {2.5f, 4, 9}};
    for (int m = 0; m < 2; m++) {
        Run r;
        node_model_n(&r, 13, "Resize", a, 4, 1);
        ob_attr_string(r.b, r.node, "mode", modes[m]);
        ob_attr_string(r.b, r.node, "coordinate_transformation_mode", "tf_crop_and_resize");
        ob_attr_float(r.b, r.node, "extrapolation_value", 9);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, floats_are(&r.y[0], 1, DIMS(3), want[m], 3, 1e-6));
        run_free(&r);
    }
}

/* ---- GridSample ---- */

TEST(gridsample_identity_grid_and_padding_modes)
{
    /* With align_corners, grid points at -1 + 2k/(n-1) land on the pixels: every mode
     * reproduces the input. */
    float x[6] = {1, 2, 3, 4, 5, 6}, grid[12];
    for (int h = 0; h < 2; h++)
        for (int w = 0; w < 3; w++) {
            grid[(h * 3 + w) * 2] = -1 + (float)w;
            grid[(h * 3 + w) * 2 + 1] = -1 + 2 * (float)h;
        }
    const char *modes[3] = {"bilinear", "nearest", "bicubic"};
    for (int m = 0; m < 3; m++) {
        Arg a[2] = {{"x", F32, 4, {1, 1, 2, 3}, x, false}, {"g", F32, 4, {1, 2, 3, 2}, grid, false}};
        Run r;
        node_model_n(&r, 16, "GridSample", a, 2, 1);
        ob_attr_string(r.b, r.node, "mode", modes[m]);
        ob_attr_int(r.b, r.node, "align_corners", 1);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, floats_are(&r.y[0], 4, DIMS(1, 1, 2, 3), x, 6, 1e-5));
        run_free(&r);
    }
    /* x = 2 past the last pixel of [5, 7]: zeros reads 0, border the edge, reflection
     * mirrors back onto pixel 0. */
    float y[2] = {5, 7}, far[2] = {3, 0};
    const char *pads[3] = {"zeros", "border", "reflection"};
    float want[3] = {0, 7, 5};
    for (int p = 0; p < 3; p++) {
        Arg a[2] = {{"x", F32, 4, {1, 1, 1, 2}, y, false}, {"g", F32, 4, {1, 1, 1, 2}, far, false}};
        Run r;
        node_model_n(&r, 16, "GridSample", a, 2, 1);
        ob_attr_string(r.b, r.node, "padding_mode", pads[p]);
        ob_attr_int(r.b, r.node, "align_corners", 1);
        RCHECK_OK(&r, run(&r));
        RCHECK(&r, floats_are(&r.y[0], 4, DIMS(1, 1, 1, 1), &want[p], 1, 1e-6));
        run_free(&r);
    }
}

TEST(gridsample_nearest_rounds_half_to_even)
{
    /* align_corners 0, width 4: gx -0.5 -> x 0.5 -> pixel 0; gx 0 -> x 1.5 -> pixel 2. */
    float x[4] = {10, 20, 30, 40}, grid[4] = {-0.5f, 0, 0, 0};
    Arg a[2] = {{"x", F32, 4, {1, 1, 1, 4}, x, false}, {"g", F32, 4, {1, 1, 2, 2}, grid, false}};
    Run r;
    node_model_n(&r, 16, "GridSample", a, 2, 1);
    ob_attr_string(r.b, r.node, "mode", "nearest");
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 4, DIMS(1, 1, 1, 2), 0, 10, 30);
    run_free(&r);
    Arg b[2] = {{"x", F32, 3, {1, 4, 1}, x, false}, {"g", F32, 4, {1, 1, 2, 2}, grid, false}};
    node_model_n(&r, 16, "GridSample", b, 2, 1);
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}

/* ---- results do not depend on the thread count ---- */

static bool same_output(Run *a, Run *b)
{
    return a->y[0].size_bytes == b->y[0].size_bytes && memcmp(a->y[0].data, b->y[0].data, a->y[0].size_bytes) == 0;
}

TEST(threads_do_not_change_results)
{
    static float x[2 * 3 * 97 * 29];
    fill_random(x, (long)(sizeof x / sizeof x[0]), 7, -1, 1);
    float scales[4] = {1, 1, 1.7f, 0.55f};
    int64_t pads[8] = {0, 1, 3, -2, 1, 0, 2, 5}, shape[5] = {2, 2, 3, 97, 29}, perm[4] = {3, 1, 0, 2};
    struct {
        const char *op;
        int n;
        Arg a[3];
    } cases[] = {
        {"Resize", 3,
         {{"x", F32, 4, {2, 3, 97, 29}, x, false}, {NULL, F32, 0, {0}, NULL, false}, {"s", F32, 1, {4}, scales, true}}},
        {"Pad", 2, {{"x", F32, 4, {2, 3, 97, 29}, x, false}, {"p", I64, 1, {8}, pads, true}}},
        {"Expand", 2, {{"x", F32, 4, {2, 3, 97, 29}, x, false}, {"s", I64, 1, {5}, shape, true}}},
        {"Transpose", 1, {{"x", F32, 4, {2, 3, 97, 29}, x, false}}},
    };
    for (int c = 0; c < 4; c++) {
        Run r1, r3;
        node_model_n(&r1, 13, cases[c].op, cases[c].a, cases[c].n, 1);
        node_model_n(&r3, 13, cases[c].op, cases[c].a, cases[c].n, 1);
        if (c == 0) {
            ob_attr_string(r1.b, r1.node, "mode", "cubic");
            ob_attr_string(r3.b, r3.node, "mode", "cubic");
        }
        if (c == 1) {
            ob_attr_string(r1.b, r1.node, "mode", "reflect");
            ob_attr_string(r3.b, r3.node, "mode", "reflect");
        }
        if (c == 3) {
            ob_attr_ints(r1.b, r1.node, "perm", perm, 4);
            ob_attr_ints(r3.b, r3.node, "perm", perm, 4);
        }
        crun_status s1 = run_threads(&r1, 1), s3 = run_threads(&r3, 3);
        bool same = s1 == CRUN_OK && s3 == CRUN_OK && same_output(&r1, &r3);
        run_free(&r1);
        run_free(&r3);
        CHECK_MSG(same, "%s differs with 1 and 3 threads (%s)", cases[c].op, crun_last_error());
    }
}

TEST(concat_1_defaults_axis_to_1)
{
    float a[2] = {1, 2}, b[2] = {3, 4};
    Arg args[2] = {{"a", F32, 2, {2, 1}, a, false}, {"b", F32, 2, {2, 1}, b, false}};
    Run r;
    node_model_n(&r, 1, "Concat", args, 2, 1);
    RCHECK_OK(&r, run(&r));
    CHECK_FLOATS_OUT(&r, 0, 2, DIMS(2, 2), 0, 1, 3, 2, 4);
    run_free(&r);
    node_model_n(&r, 4, "Concat", args, 2, 1); /* required from opset 4 */
    RCHECK_STATUS(&r, run(&r), CRUN_ERR_INVALID_MODEL);
    run_free(&r);
}
