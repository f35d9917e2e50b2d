/* test_nn.c - the nn family beyond Conv: ConvTranspose, pooling extras (LpPool,
 * GlobalLpPool, MaxUnpool, MaxPool indices and int8), RNN/GRU/LSTM, DFT/STFT/windows/
 * MelWeightMatrix, RoiAlign/MaxRoiPool/NonMaxSuppression, Einsum and Det.
 *
 * Hand-checked values for edge cases the conformance data misses, each opset form,
 * attribute and data errors, and the optimised kernels against the reference ones (also
 * bit-identical across thread counts). */
#include <float.h>
#include <stdlib.h>

#include "ops/registry.h"
#include "testutil.h"

#define F32 CRUN_DTYPE_FLOAT
#define F64 CRUN_DTYPE_DOUBLE
#define I64 CRUN_DTYPE_INT64
#define I32 CRUN_DTYPE_INT32
#define I8 CRUN_DTYPE_INT8

/* One output into y. */
static crun_status run1(OnnxBuilder *b, const TIn *in, int n_in, void *y, size_t max_bytes, crun_tensor *shape)
{
    void *dst[1] = {y};
    return run_get(b, 2, in, n_in, 1, dst, max_bytes, shape);
}

static bool dims_are(const crun_tensor *t, int rank, const int64_t *dims)
{
    if (t->rank != rank)
        return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != dims[i])
            return false;
    return true;
}

/* Runs b twice (best kernels, then the reference ones) and once more with 3 threads; the
 * best must match the reference within tolerance and itself across thread counts bit for
 * bit. n_out outputs of up to `count` floats each. */
static bool best_vs_reference(OnnxBuilder *b, const TIn *in, int n_in, int n_out, long count, double rtol, double atol,
                              char *why, size_t size)
{
    float *buf[3][3] = {{NULL}};
    bool ok = true;
    for (int r = 0; r < 3 && ok; r++) {
        for (int k = 0; k < n_out; k++)
            buf[r][k] = calloc((size_t)count, sizeof(float));
        kernels_use_reference(r == 1);
        crun_tensor shape[3];
        crun_status st = run_get(b, r == 2 ? 3 : 1, in, n_in, n_out, (void *const *)buf[r], (size_t)count * 4, shape);
        ok = st == CRUN_OK;
        if (!ok)
            snprintf(why, size, "run %d: %s", r, crun_last_error());
    }
    kernels_use_reference(false);
    for (int k = 0; k < n_out && ok; k++) {
        ok = floats_close(buf[0][k], buf[1][k], count, rtol, atol, why, size);
        if (ok && memcmp(buf[0][k], buf[2][k], (size_t)count * 4) != 0) {
            snprintf(why, size, "output %d differs between 1 and 3 threads", k);
            ok = false;
        }
    }
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < n_out; k++)
            free(buf[r][k]);
    return ok;
}

/* ================= ConvTranspose ================= */

static OnnxBuilder *ct1d(int opset, int64_t c, int64_t m, int64_t len, int64_t k, const float *w, bool bias)
{
    int64_t dx[3] = {1, c, len}, dw[3] = {c, m, k}, db[1] = {m};
    float bv[8] = {10, 10, 10, 10, 10, 10, 10, 10};
    OnnxBuilder *b = ob_new(opset);
    ob_input(b, "x", F32, 3, dx, NULL);
    ob_init_f32(b, "w", 3, dw, w);
    if (bias)
        ob_init_f32(b, "b", 1, db, bv);
    ob_node(b, "ConvTranspose", bias ? "x,w,b" : "x,w", "y");
    ob_output(b, "y");
    return b;
}

static Onnx__NodeProto *node0(OnnxBuilder *b)
{
    return ob_model(b)->graph->node[0];
}

TEST(convtranspose_1d_forms)
{
    float x[2] = {1, 2}, w[3] = {1, 1, 1}, y[8];
    TIn in = {F32, 3, {1, 1, 2}, x};
    crun_tensor t;
    int64_t two[1] = {2};
    /* stride 2: rows [1,1,1] at 0 and [2,2,2] at 2 -> [1,1,3,2,2], + bias 10 */
    OnnxBuilder *b = ct1d(11, 1, 1, 2, 3, w, true);
    ob_attr_ints(b, node0(b), "strides", two, 1);
    CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
    ob_free(b);
    float want1[5] = {11, 11, 13, 12, 12};
    CHECK(t.rank == 3 && t.dims[2] == 5);
    CHECK_FLOATS(y, want1, 5, 0, 0);

    /* output_shape 7 asks for 2 more than the full 5: pads -1 on each side, bias only there */
    b = ct1d(11, 1, 1, 2, 3, w, true);
    int64_t os[1] = {7};
    ob_attr_ints(b, node0(b), "strides", two, 1);
    ob_attr_ints(b, node0(b), "output_shape", os, 1);
    CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
    ob_free(b);
    float want2[7] = {10, 11, 11, 13, 12, 12, 10};
    CHECK(t.dims[2] == 7);
    CHECK_FLOATS(y, want2, 7, 0, 0);

    /* pads [1,0] with output_padding 1 (opset 1 form, no bias): [1,1,3,2,2,0] minus the first */
    b = ct1d(1, 1, 1, 2, 3, w, false);
    int64_t pads[2] = {1, 0}, op[1] = {1};
    ob_attr_ints(b, node0(b), "strides", two, 1);
    ob_attr_ints(b, node0(b), "pads", pads, 2);
    ob_attr_ints(b, node0(b), "output_padding", op, 1);
    CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
    ob_free(b);
    float want3[5] = {1, 3, 2, 2, 0};
    CHECK(t.dims[2] == 5);
    CHECK_FLOATS(y, want3, 5, 0, 0);
}

TEST(convtranspose_auto_pad_and_groups)
{
    /* kernel 1, stride 2 on 2 samples: full [5,0,10]; SAME wants 4, one more than full:
     * SAME_UPPER starts one earlier (pad -1 at the start), SAME_LOWER at the end. */
    float x[2] = {1, 2}, w1[1] = {5}, y[8];
    TIn in = {F32, 3, {1, 1, 2}, x};
    int64_t two[1] = {2};
    const char *modes[2] = {"SAME_UPPER", "SAME_LOWER"};
    float want[2][4] = {{0, 5, 0, 10}, {5, 0, 10, 0}};
    for (int i = 0; i < 2; i++) {
        OnnxBuilder *b = ct1d(11, 1, 1, 2, 1, w1, false);
        ob_attr_ints(b, node0(b), "strides", two, 1);
        ob_attr_string(b, node0(b), "auto_pad", modes[i]);
        crun_tensor t;
        CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
        ob_free(b);
        CHECK(t.dims[2] == 4);
        CHECK_FLOATS(y, want[i], 4, 0, 0);
    }
    /* group 2: channel 0 with [1,1], channel 1 with [1,-1] */
    float x2[4] = {1, 2, 3, 4}, w2[4] = {1, 1, 1, -1};
    OnnxBuilder *b = ct1d(11, 2, 1, 2, 2, w2, false);
    ob_attr_int(b, node0(b), "group", 2);
    TIn in2 = {F32, 3, {1, 2, 2}, x2};
    crun_tensor t;
    CHECK_OK(run1(b, &in2, 1, y, sizeof y, &t));
    ob_free(b);
    float want2[6] = {1, 3, 2, 3, 1, -4};
    CHECK(t.dims[1] == 2 && t.dims[2] == 3);
    CHECK_FLOATS(y, want2, 6, 0, 0);
}

TEST(convtranspose_rejects_bad_attributes)
{
    float w[4] = {1, 1, 1, 1};
    TIn in = {F32, 3, {1, 2, 2}, w};
    float y[16];
    OnnxBuilder *b = ct1d(11, 2, 1, 2, 2, w, false);
    ob_attr_int(b, node0(b), "group", 3); /* 2 channels in 3 groups */
    CHECK_STATUS(run1(b, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "divisible by group"));
    ob_free(b);
    b = ct1d(11, 2, 1, 2, 2, w, false);
    int64_t op[1] = {-1};
    ob_attr_ints(b, node0(b), "output_padding", op, 1);
    CHECK_STATUS(run1(b, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    ob_free(b);
    b = ct1d(11, 2, 1, 2, 2, w, false);
    int64_t pads[2] = {3, 3}; /* output 3 - 6 < 1 */
    ob_attr_ints(b, node0(b), "pads", pads, 2);
    CHECK_STATUS(run1(b, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "not positive"));
    ob_free(b);
}

TEST(convtranspose_gemm_matches_naive)
{
    struct {
        int nsp, C, M, G, in, k, s, d, pad;
        bool const_w;
    } cases[] = {
        {2, 3, 4, 1, 5, 3, 2, 1, 1, true},    {2, 4, 6, 2, 7, 2, 2, 2, 0, false}, {1, 6, 3, 3, 9, 3, 3, 1, 2, true},
        {3, 2, 2, 1, 4, 2, 2, 1, 0, true},    {2, 8, 8, 4, 6, 4, 1, 1, 3, false}, {2, 1, 1, 1, 1, 1, 1, 1, 0, true},
        {2, 16, 32, 1, 40, 4, 2, 1, 1, true}, /* several column chunks */
        /* kernel = stride, no padding: every output takes one tap (stored, not added) */
        {2, 6, 4, 2, 9, 2, 2, 1, 0, true},    {2, 24, 24, 1, 60, 2, 2, 1, 0, true}, {1, 5, 5, 5, 11, 3, 3, 1, 0, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int nsp = cases[c].nsp, Cg = cases[c].C / cases[c].G, Mg = cases[c].M / cases[c].G;
        int64_t dx[5] = {2, cases[c].C}, dw[5] = {cases[c].C, Mg}, db[1] = {cases[c].M};
        int64_t st[3], dil[3], pads[6];
        long nx = 2L * cases[c].C, nw = (long)cases[c].C * Mg;
        for (int a = 0; a < nsp; a++) {
            dx[2 + a] = cases[c].in + a;
            dw[2 + a] = cases[c].k;
            st[a] = cases[c].s;
            dil[a] = cases[c].d;
            pads[a] = pads[a + nsp] = CRUN_MIN(cases[c].pad, (cases[c].k - 1) * cases[c].d);
            nx *= dx[2 + a];
            nw *= cases[c].k;
        }
        (void)Cg;
        float *x = malloc((size_t)nx * 4), *w = malloc((size_t)nw * 4), bias[32];
        fill_random(x, nx, 21 + (unsigned)c, -1, 1);
        fill_random(w, nw, 41 + (unsigned)c, -1, 1);
        fill_random(bias, cases[c].M, 61, -1, 1);
        OnnxBuilder *b = ob_new(11);
        ob_input(b, "x", F32, 2 + nsp, dx, NULL);
        if (cases[c].const_w)
            ob_init_f32(b, "w", 2 + nsp, dw, w);
        else
            ob_input(b, "w", F32, 2 + nsp, dw, NULL);
        ob_init_f32(b, "b", 1, db, bias);
        Onnx__NodeProto *n = ob_node(b, "ConvTranspose", "x,w,b", "y");
        ob_attr_ints(b, n, "strides", st, nsp);
        ob_attr_ints(b, n, "dilations", dil, nsp);
        ob_attr_ints(b, n, "pads", pads, 2 * nsp);
        ob_attr_int(b, n, "group", cases[c].G);
        ob_output(b, "y");
        TIn in[2] = {{F32, 2 + nsp, {0}, x}, {F32, 2 + nsp, {0}, w}};
        memcpy(in[0].dims, dx, sizeof dx);
        memcpy(in[1].dims, dw, sizeof dw);
        long out = 2L * cases[c].M;
        for (int a = 0; a < nsp; a++)
            out *= cases[c].s * (dx[2 + a] - 1) + (cases[c].k - 1) * cases[c].d + 1 - 2 * pads[a];
        char why[200];
        bool ok = best_vs_reference(b, in, cases[c].const_w ? 1 : 2, 1, out, 1e-4, 1e-5, why, sizeof why);
        ob_free(b);
        free(x);
        free(w);
        CHECK_MSG(ok, "case %zu: %s", c, why);
    }
}

/* ================= pooling ================= */

TEST(lppool_and_global_lppool)
{
    float x[3] = {3, -4, 0}, y[4];
    int64_t d[3] = {1, 1, 3}, k[1] = {2};
    TIn in = {F32, 3, {1, 1, 3}, x};
    /* p as a float (opset 1) and as an int (opset 2+) */
    for (int form = 0; form < 2; form++) {
        OnnxBuilder *b = ob_new(form ? 11 : 1);
        ob_input(b, "x", F32, 3, d, NULL);
        Onnx__NodeProto *n = ob_node(b, "LpPool", "x", "y");
        ob_attr_ints(b, n, "kernel_shape", k, 1);
        if (form)
            ob_attr_int(b, n, "p", 1);
        else
            ob_attr_float(b, n, "p", 1.0f);
        ob_output(b, "y");
        crun_tensor t;
        CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
        ob_free(b);
        float want[2] = {7, 4};
        CHECK(t.dims[2] == 2);
        CHECK_FLOATS(y, want, 2, 1e-6, 0);
    }
    OnnxBuilder *b = ob_new(11);
    ob_input(b, "x", F32, 3, d, NULL);
    Onnx__NodeProto *n = ob_node(b, "LpPool", "x", "y"); /* default p = 2 */
    ob_attr_ints(b, n, "kernel_shape", k, 1);
    ob_output(b, "y");
    CHECK_OK(run1(b, &in, 1, y, sizeof y, NULL));
    ob_free(b);
    float want2[2] = {5, 4};
    CHECK_FLOATS(y, want2, 2, 1e-6, 0);

    b = ob_new(2);
    ob_input(b, "x", F32, 3, d, NULL);
    ob_attr_int(b, ob_node(b, "GlobalLpPool", "x", "y"), "p", 3);
    ob_output(b, "y");
    crun_tensor t;
    CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
    ob_free(b);
    int64_t want_dims[3] = {1, 1, 1};
    CHECK(dims_are(&t, 3, want_dims));
    CHECK_NEAR(y[0], cbrt(27.0 + 64.0), 1e-5);

    b = ob_new(11);
    ob_input(b, "x", F32, 3, d, NULL);
    n = ob_node(b, "LpPool", "x", "y");
    ob_attr_ints(b, n, "kernel_shape", k, 1);
    ob_attr_int(b, n, "p", 0);
    ob_output(b, "y");
    CHECK_STATUS(run1(b, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    ob_free(b);
}

TEST(maxpool_int8_padding_and_storage_order)
{
    /* Padding never wins: an all-negative int8 row keeps its values. */
    int8_t x[3] = {-5, -3, -8}, y[4];
    int64_t d[3] = {1, 1, 3}, k[1] = {2}, pads[2] = {1, 1};
    OnnxBuilder *b = ob_new(12);
    ob_input(b, "x", I8, 3, d, NULL);
    Onnx__NodeProto *n = ob_node(b, "MaxPool", "x", "y");
    ob_attr_ints(b, n, "kernel_shape", k, 1);
    ob_attr_ints(b, n, "pads", pads, 2);
    ob_output(b, "y");
    TIn in = {I8, 3, {1, 1, 3}, x};
    CHECK_OK(run1(b, &in, 1, y, sizeof y, NULL));
    ob_free(b);
    CHECK(y[0] == -5 && y[1] == -3 && y[2] == -3 && y[3] == -8);

    /* Indices in row-major and (storage_order 1) column-major order: maxima 5 at (0,1)
     * and 6 at (1,2) of a 2x3 plane. */
    float xf[6] = {1, 5, 2, 4, 3, 6}, yv[2];
    int64_t dx[4] = {1, 1, 2, 3}, k2[2] = {2, 2};
    int64_t want[2][2] = {{1, 5}, {2, 5}};
    for (int so = 0; so < 2; so++) {
        b = ob_new(8);
        ob_input(b, "x", F32, 4, dx, NULL);
        n = ob_node(b, "MaxPool", "x", "y,i");
        ob_attr_ints(b, n, "kernel_shape", k2, 2);
        ob_attr_int(b, n, "storage_order", so);
        ob_output(b, "y");
        ob_output(b, "i");
        int64_t idx[2];
        void *dst[2] = {yv, idx};
        TIn in2 = {F32, 4, {1, 1, 2, 3}, xf};
        CHECK_OK(run_get(b, 1, &in2, 1, 2, dst, 16, NULL));
        ob_free(b);
        CHECK(yv[0] == 5 && yv[1] == 6);
        CHECK_MSG(idx[0] == want[so][0] && idx[1] == want[so][1], "storage_order %d: %lld %lld", so, (long long)idx[0],
                  (long long)idx[1]);
    }
    /* int8 is refused for AveragePool */
    b = ob_new(12);
    ob_input(b, "x", I8, 3, d, NULL);
    ob_attr_ints(b, ob_node(b, "AveragePool", "x", "y"), "kernel_shape", k, 1);
    ob_output(b, "y");
    CHECK_STATUS(run1(b, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    ob_free(b);
}

static OnnxBuilder *unpool_model(bool with_shape)
{
    int64_t dx[3] = {1, 1, 2}, k[1] = {2}, ds[1] = {3};
    OnnxBuilder *b = ob_new(11);
    ob_input(b, "x", F32, 3, dx, NULL);
    ob_input(b, "i", I64, 3, dx, NULL);
    if (with_shape)
        ob_input(b, "s", I64, 1, ds, NULL);
    Onnx__NodeProto *n = ob_node(b, "MaxUnpool", with_shape ? "x,i,s" : "x,i", "y");
    ob_attr_ints(b, n, "kernel_shape", k, 1);
    ob_attr_ints(b, n, "strides", k, 1);
    ob_output(b, "y");
    return b;
}

TEST(maxunpool_shapes_and_bad_indices)
{
    float x[2] = {7, 9}, y[8];
    int64_t idx[2] = {1, 2};
    TIn in[3] = {{F32, 3, {1, 1, 2}, x}, {I64, 3, {1, 1, 2}, idx}, {I64, 1, {3}, NULL}};
    OnnxBuilder *b = unpool_model(false);
    crun_tensor t;
    CHECK_OK(run1(b, in, 2, y, sizeof y, &t));
    float want[4] = {0, 7, 9, 0};
    CHECK(t.dims[2] == 4);
    CHECK_FLOATS(y, want, 4, 0, 0);
    /* An index past the unpooled tensor is a runtime error. */
    idx[1] = 4;
    CHECK_STATUS(run1(b, in, 2, y, sizeof y, NULL), CRUN_ERR_RUNTIME);
    CHECK(strstr(crun_last_error(), "index 4"));
    ob_free(b);
    idx[1] = 2;
    /* A larger output_shape keeps the default-shaped result at the start. */
    int64_t shape6[3] = {1, 1, 6}, shape3[3] = {1, 1, 3};
    b = unpool_model(true);
    in[2].data = shape6;
    CHECK_OK(run1(b, in, 3, y, sizeof y, &t));
    float want6[6] = {0, 7, 9, 0, 0, 0};
    CHECK(t.dims[2] == 6);
    CHECK_FLOATS(y, want6, 6, 0, 0);
    in[2].data = shape3; /* smaller than the default 4 */
    CHECK(run1(b, in, 3, y, sizeof y, NULL) != CRUN_OK);
    CHECK(strstr(crun_last_error(), "does not fit"));
    ob_free(b);
}

/* ================= RNN, GRU, LSTM ================= */

/* A one-node recurrent model; inputs are named X W R B sequence_lens initial_h initial_c P
 * (omitted where the list leaves them empty); outputs Y, Y_h (, Y_c). */
static OnnxBuilder *rnn_model(int opset, const char *op, const char *inputs, const TIn *in, int n_in, int n_out)
{
    static const char *const names[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};
    OnnxBuilder *b = ob_new(opset);
    char list[128];
    strcpy(list, inputs);
    int k = 0;
    for (char *s = list; *s && k < n_in;) {
        char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        for (size_t j = 0; j < CRUN_ARRAY_LEN(names); j++)
            if (len && strlen(names[j]) == len && !strncmp(names[j], s, len)) {
                ob_input(b, names[j], in[k].dtype, in[k].rank, in[k].dims, NULL);
                k++;
            }
        if (!e)
            break;
        s = e + 1;
    }
    ob_node(b, op, inputs, n_out == 3 ? "Y,Y_h,Y_c" : "Y,Y_h");
    ob_output(b, "Y");
    ob_output(b, "Y_h");
    if (n_out == 3)
        ob_output(b, "Y_c");
    return b;
}

static double sigm(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

TEST(rnn_hand_checked_with_reverse_and_lengths)
{
    /* H = I = 1, two batch rows, T = 3; W = 1, R = 0.5, Wb + Rb = 0.3. Row 1 has length 1. */
    float X[6] = {1, -1, 2, 5, 3, 5}, W[1] = {1}, R[1] = {0.5f}, B[2] = {0.1f, 0.2f}, Y[6], Yh[2];
    int32_t lens[2] = {3, 1};
    TIn in[5] = {{F32, 3, {3, 2, 1}, X},
                 {F32, 3, {1, 1, 1}, W},
                 {F32, 3, {1, 1, 1}, R},
                 {F32, 2, {1, 2}, B},
                 {I32, 1, {2}, lens}};
    for (int rev = 0; rev < 2; rev++) {
        OnnxBuilder *b = rnn_model(14, "RNN", "X,W,R,B,sequence_lens", in, 5, 2);
        ob_attr_int(b, node0(b), "hidden_size", 1);
        if (rev)
            ob_attr_string(b, node0(b), "direction", "reverse");
        void *dst[2] = {Y, Yh};
        crun_tensor t[2];
        CHECK_OK(run_get(b, 1, in, 5, 2, dst, sizeof Y, t));
        ob_free(b);
        int64_t ydims[4] = {3, 1, 2, 1}, hdims[3] = {1, 2, 1};
        CHECK(dims_are(&t[0], 4, ydims) && dims_are(&t[1], 3, hdims));
        double h[3], hp = 0;
        for (int s = 0; s < 3; s++) { /* row 0 */
            int tt = rev ? 2 - s : s;
            hp = h[tt] = tanh(X[tt * 2] + 0.5 * hp + 0.3);
        }
        double h1 = tanh(-1 + 0.3); /* row 1: only step 0, in either direction */
        float want[6] = {(float)h[0], (float)h1, (float)h[1], 0, (float)h[2], 0};
        CHECK_FLOATS(Y, want, 6, 1e-6, 1e-7);
        CHECK_NEAR(Yh[0], rev ? h[0] : h[2], 1e-6);
        CHECK_NEAR(Yh[1], h1, 1e-6);
    }
    /* A length beyond T is a runtime error. */
    lens[1] = 4;
    OnnxBuilder *b = rnn_model(14, "RNN", "X,W,R,B,sequence_lens", in, 5, 2);
    ob_attr_int(b, node0(b), "hidden_size", 1);
    void *dst[2] = {Y, Yh};
    CHECK_STATUS(run_get(b, 1, in, 5, 2, dst, sizeof Y, NULL), CRUN_ERR_RUNTIME);
    CHECK(strstr(crun_last_error(), "sequence_lens[1] = 4"));
    ob_free(b);
}

/* List attributes the builder has no helper for: made as ints, then retyped to point at
 * the caller's values (which must live until the model is packed). */
static Onnx__AttributeProto *retyped_attr(OnnxBuilder *b, Onnx__NodeProto *n, const char *name,
                                          Onnx__AttributeProto__AttributeType type)
{
    int64_t dummy = 0;
    ob_attr_ints(b, n, name, &dummy, 1);
    Onnx__AttributeProto *a = n->attribute[n->n_attribute - 1];
    a->type = type;
    a->n_ints = 0;
    return a;
}

static void attr_floats(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, float *v, size_t count)
{
    Onnx__AttributeProto *a = retyped_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = count;
    a->floats = v;
}

static void attr_strings(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, ProtobufCBinaryData *v, size_t count)
{
    Onnx__AttributeProto *a = retyped_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = count;
    a->strings = v;
}

static ProtobufCBinaryData bstr(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

TEST(rnn_activation_parameters_clip_and_layout)
{
    /* Affine(alpha 2, beta 0.5) with clip 1: h_t = 2 * clip(x_t + 0.5 h) + 0.5; layout 1. */
    float X[2] = {0.25f, 3}, W[1] = {1}, R[1] = {0.5f}, Y[2], Yh[1];
    float alpha[1] = {2}, beta[1] = {0.5f};
    ProtobufCBinaryData acts[1] = {bstr("Affine")};
    TIn in[3] = {{F32, 3, {1, 2, 1}, X}, {F32, 3, {1, 1, 1}, W}, {F32, 3, {1, 1, 1}, R}};
    OnnxBuilder *b = rnn_model(14, "RNN", "X,W,R", in, 3, 2);
    Onnx__NodeProto *n = node0(b);
    ob_attr_int(b, n, "layout", 1);
    ob_attr_float(b, n, "clip", 1.0f);
    attr_strings(b, n, "activations", acts, 1);
    attr_floats(b, n, "activation_alpha", alpha, 1);
    attr_floats(b, n, "activation_beta", beta, 1);
    void *dst[2] = {Y, Yh};
    crun_tensor t[2];
    CHECK_OK(run_get(b, 1, in, 3, 2, dst, sizeof Y, t));
    ob_free(b);
    double h1 = 2 * 0.25 + 0.5;                        /* clip(0.25) = 0.25 */
    double h2 = 2 * CRUN_MIN(3 + 0.5 * h1, 1.0) + 0.5; /* clipped to 1 */
    int64_t ydims[4] = {1, 2, 1, 1}, hdims[3] = {1, 1, 1};
    CHECK(dims_are(&t[0], 4, ydims) && dims_are(&t[1], 3, hdims));
    CHECK_NEAR(Y[0], h1, 1e-6);
    CHECK_NEAR(Y[1], h2, 1e-6);
    CHECK_NEAR(Yh[0], h2, 1e-6);
}

TEST(rnn_rejects_bad_attributes)
{
    float X[2] = {1, 2}, W[1] = {1}, R[1] = {1}, Y[2];
    TIn in[3] = {{F32, 3, {2, 1, 1}, X}, {F32, 3, {1, 1, 1}, W}, {F32, 3, {1, 1, 1}, R}};
    ProtobufCBinaryData bad[1] = {bstr("Swish")}, three[3] = {bstr("Tanh"), bstr("Tanh"), bstr("Tanh")};
    for (int c = 0; c < 4; c++) {
        OnnxBuilder *b = rnn_model(14, "RNN", "X,W,R", in, 3, 2);
        Onnx__NodeProto *n = node0(b);
        crun_status want = CRUN_ERR_INVALID_MODEL;
        if (c == 0)
            ob_attr_string(b, n, "direction", "sideways");
        if (c == 1)
            ob_attr_int(b, n, "hidden_size", 2); /* W says 1 */
        if (c == 2) {
            attr_strings(b, n, "activations", bad, 1);
            want = CRUN_ERR_UNSUPPORTED;
        }
        if (c == 3)
            attr_strings(b, n, "activations", three, 3); /* RNN takes 1 per direction */
        void *dst[1] = {Y};
        CHECK_STATUS(run_get(b, 1, in, 3, 1, dst, sizeof Y, NULL), want);
        ob_free(b);
    }
}

TEST(gru_linear_before_reset_and_default_direction)
{
    /* One step from h0 = 0.5 with H = I = 1; gates z, r, h: W = (0.3, -0.2, 0.7),
     * R = (0.4, 0.9, -1.1), Wb = (0.1, 0.2, 0.3), Rb = (-0.1, 0.05, 0.6). */
    float X[1] = {1.5f}, W[3] = {0.3f, -0.2f, 0.7f}, R[3] = {0.4f, 0.9f, -1.1f};
    float B[6] = {0.1f, 0.2f, 0.3f, -0.1f, 0.05f, 0.6f}, h0[1] = {0.5f}, Y[1], Yh[1];
    TIn in[5] = {{F32, 3, {1, 1, 1}, X},
                 {F32, 3, {1, 3, 1}, W},
                 {F32, 3, {1, 3, 1}, R},
                 {F32, 2, {1, 6}, B},
                 {F32, 3, {1, 1, 1}, h0}};
    double x = 1.5, h = 0.5;
    double z = sigm(0.3 * x + 0.4 * h + 0.1 - 0.1), r = sigm(-0.2 * x + 0.9 * h + 0.2 + 0.05);
    double hh0 = tanh(0.7 * x + -1.1 * (r * h) + 0.6 + 0.3);
    double hh1 = tanh(0.7 * x + r * (-1.1 * h + 0.6) + 0.3);
    for (int lbr = 0; lbr < 2; lbr++) {
        /* Opset 3 with no direction attribute: the (misspelt) default is forward. */
        OnnxBuilder *b = rnn_model(lbr ? 14 : 3, "GRU", "X,W,R,B,,initial_h", in, 5, 2);
        ob_attr_int(b, node0(b), "linear_before_reset", lbr);
        void *dst[2] = {Y, Yh};
        CHECK_OK(run_get(b, 1, in, 5, 2, dst, sizeof Y, NULL));
        ob_free(b);
        double want = (1 - z) * (lbr ? hh1 : hh0) + z * h;
        CHECK_NEAR(Y[0], want, 1e-6);
        CHECK_NEAR(Yh[0], want, 1e-6);
    }
    CHECK(fabs(hh0 - hh1) > 1e-3); /* the two forms really differ here */
}

TEST(lstm_peepholes_and_input_forget)
{
    /* One step, H = I = 1: gates i, o, f, c with W = (0.5, -0.3, 0.8, 0.2), R = (0.1, 0.4, -0.6, 0.7),
     * no bias, peepholes P = (pi, po, pf) = (0.3, -0.5, 0.2), h0 = 0.4, c0 = -0.7. */
    float X[1] = {1.2f}, W[4] = {0.5f, -0.3f, 0.8f, 0.2f}, R[4] = {0.1f, 0.4f, -0.6f, 0.7f};
    float P[3] = {0.3f, -0.5f, 0.2f}, h0[1] = {0.4f}, c0[1] = {-0.7f}, out[3][1];
    TIn in[7] = {{F32, 3, {1, 1, 1}, X},  {F32, 3, {1, 4, 1}, W},  {F32, 3, {1, 4, 1}, R},
                 {F32, 3, {1, 1, 1}, h0}, {F32, 3, {1, 1, 1}, c0}, {F32, 2, {1, 3}, P}};
    double x = 1.2, h = 0.4, c = -0.7;
    double i = sigm(0.5 * x + 0.1 * h + 0.3 * c), g = tanh(0.2 * x + 0.7 * h);
    for (int fi = 0; fi < 2; fi++) {
        OnnxBuilder *b = rnn_model(fi ? 7 : 14, "LSTM", "X,W,R,,,initial_h,initial_c,P", in, 6, 3);
        ob_attr_int(b, node0(b), "input_forget", fi);
        void *dst[3] = {out[0], out[1], out[2]};
        CHECK_OK(run_get(b, 1, in, 6, 3, dst, 4, NULL));
        ob_free(b);
        double f = fi ? 1 - i : sigm(0.8 * x - 0.6 * h + 0.2 * c);
        double cn = f * c + i * g, o = sigm(-0.3 * x + 0.4 * h - 0.5 * cn), hn = o * tanh(cn);
        CHECK_NEAR(out[0][0], hn, 1e-6);
        CHECK_NEAR(out[1][0], hn, 1e-6);
        CHECK_NEAR(out[2][0], cn, 1e-6);
    }
}

TEST(recurrent_gemm_matches_reference)
{
    /* Bidirectional, uneven lengths, biases and initial states, both layouts; W and R either
     * constant (packed at plan time) or inputs. */
    const char *ops[3] = {"RNN", "GRU", "LSTM"};
    int gates[3] = {1, 3, 4};
    int64_t T = 7, Bn = 5, I = 9, H = 11;
    for (int op = 0; op < 3; op++)
        for (int v = 0; v < 2; v++) {
            int64_t G = gates[op], D = 2;
            long nx = (long)(T * Bn * I), nw = (long)(D * G * H * I), nr = (long)(D * G * H * H);
            long nb = (long)(D * 2 * G * H), nh = (long)(D * Bn * H);
            float *x = malloc((size_t)nx * 4), *w = malloc((size_t)nw * 4), *r = malloc((size_t)nr * 4);
            float *bb = malloc((size_t)nb * 4), *h0 = malloc((size_t)nh * 4), *c0 = malloc((size_t)nh * 4);
            float p[2 * 3 * 11];
            int32_t lens[5] = {7, 1, 4, 0, 6};
            fill_random(x, nx, 1, -1, 1);
            fill_random(w, nw, 2, -0.5f, 0.5f);
            fill_random(r, nr, 3, -0.5f, 0.5f);
            fill_random(bb, nb, 4, -0.5f, 0.5f);
            fill_random(h0, nh, 5, -1, 1);
            fill_random(c0, nh, 6, -1, 1);
            fill_random(p, 66, 7, -0.5f, 0.5f);
            int64_t l = v; /* layout */
            int64_t dx[3] = {l ? Bn : T, l ? T : Bn, I}, dw[3] = {D, G * H, I}, dr[3] = {D, G * H, H};
            int64_t db[2] = {D, 2 * G * H}, dh[3] = {l ? Bn : D, l ? D : Bn, H}, dp[2] = {D, 3 * H}, dl[1] = {Bn};
            OnnxBuilder *b = ob_new(14);
            ob_input(b, "X", F32, 3, dx, NULL);
            if (v) {
                ob_init_f32(b, "W", 3, dw, w);
                ob_init_f32(b, "R", 3, dr, r);
            } else {
                ob_input(b, "W", F32, 3, dw, NULL);
                ob_input(b, "R", F32, 3, dr, NULL);
            }
            ob_init_f32(b, "B", 2, db, bb);
            ob_initializer(b, ob_tensor(b, "sequence_lens", I32, 1, dl, lens));
            ob_init_f32(b, "initial_h", 3, dh, h0);
            ob_init_f32(b, "initial_c", 3, dh, c0);
            ob_init_f32(b, "P", 2, dp, p);
            Onnx__NodeProto *n = ob_node(
                b, ops[op], op == 2 ? "X,W,R,B,sequence_lens,initial_h,initial_c,P" : "X,W,R,B,sequence_lens,initial_h",
                op == 2 ? "Y,Y_h,Y_c" : "Y,Y_h");
            ob_attr_string(b, n, "direction", "bidirectional");
            ob_attr_int(b, n, "hidden_size", H);
            ob_attr_int(b, n, "layout", l);
            if (op == 1)
                ob_attr_int(b, n, "linear_before_reset", v);
            ob_output(b, "Y");
            ob_output(b, "Y_h");
            if (op == 2)
                ob_output(b, "Y_c");
            TIn in[3] = {{F32, 3, {dx[0], dx[1], dx[2]}, x}, {F32, 3, {D, G * H, I}, w}, {F32, 3, {D, G * H, H}, r}};
            char why[200];
            bool ok = best_vs_reference(b, in, v ? 1 : 3, op == 2 ? 3 : 2, (long)(T * D * Bn * H), 1e-4, 1e-5, why,
                                        sizeof why);
            ob_free(b);
            free(x);
            free(w);
            free(r);
            free(bb);
            free(h0);
            free(c0);
            CHECK_MSG(ok, "%s layout %d: %s", ops[op], v, why);
        }
}

/* ================= signal ================= */

TEST(dft_hand_checked_forms)
{
    /* The impulse transforms to all ones (n = 5, direct sum). */
    float x[5] = {1, 0, 0, 0, 0}, y[16];
    int64_t d5[3] = {1, 5, 1};
    OnnxBuilder *b = ob_new(17);
    ob_input(b, "x", F32, 3, d5, NULL);
    ob_node(b, "DFT", "x", "y");
    ob_output(b, "y");
    TIn in = {F32, 3, {1, 5, 1}, x};
    crun_tensor t;
    CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
    ob_free(b);
    int64_t want_dims[3] = {1, 5, 2};
    CHECK(dims_are(&t, 3, want_dims));
    for (int k = 0; k < 5; k++) {
        CHECK_NEAR(y[2 * k], 1, 1e-7);
        CHECK_NEAR(y[2 * k + 1], 0, 1e-7);
    }
    /* dft_length 3 truncates [1,2,3,4] to [1,2,3]: X = 6, -1.5 + 0.866i, -1.5 - 0.866i;
     * axis -2 is axis 1 here. */
    float x4[4] = {1, 2, 3, 4};
    int64_t d4[3] = {1, 4, 1}, dl[1] = {1}, three[1] = {3};
    b = ob_new(17);
    ob_input(b, "x", F32, 3, d4, NULL);
    ob_init_i64(b, "n", 0, dl, three);
    ob_attr_int(b, ob_node(b, "DFT", "x,n", "y"), "axis", -2);
    ob_output(b, "y");
    TIn in4 = {F32, 3, {1, 4, 1}, x4};
    CHECK_OK(run1(b, &in4, 1, y, sizeof y, &t));
    ob_free(b);
    float want3[6] = {6, 0, -1.5f, 0.8660254f, -1.5f, -0.8660254f};
    CHECK(t.dims[1] == 3);
    CHECK_FLOATS(y, want3, 6, 1e-6, 1e-6);
    /* onesided on 4 real samples: bins 0..2 = 10, -2 + 2i, -2 */
    b = ob_new(17);
    ob_input(b, "x", F32, 3, d4, NULL);
    ob_attr_int(b, ob_node(b, "DFT", "x", "y"), "onesided", 1);
    ob_output(b, "y");
    CHECK_OK(run1(b, &in4, 1, y, sizeof y, &t));
    ob_free(b);
    float want_os[6] = {10, 0, -2, 2, -2, 0};
    CHECK(t.dims[1] == 3);
    CHECK_FLOATS(y, want_os, 6, 1e-6, 1e-6);
    /* Errors: inverse with onesided; axis on the complex dim. */
    for (int c = 0; c < 2; c++) {
        b = ob_new(17);
        ob_input(b, "x", F32, 3, d4, NULL);
        Onnx__NodeProto *n = ob_node(b, "DFT", "x", "y");
        if (c == 0) {
            ob_attr_int(b, n, "inverse", 1);
            ob_attr_int(b, n, "onesided", 1);
        } else {
            ob_attr_int(b, n, "axis", 2);
        }
        ob_output(b, "y");
        CHECK(run1(b, &in4, 1, y, sizeof y, NULL) != CRUN_OK);
        ob_free(b);
    }
}

TEST(dft_inverse_round_trip_every_algorithm)
{
    /* 64: radix 2; 60: direct sum; 97 and 100: Bluestein. Complex input, transform and back. */
    int64_t lens[4] = {64, 60, 97, 100};
    for (int c = 0; c < 4; c++) {
        int64_t n = lens[c], d[3] = {2, n, 2};
        float *x = malloc((size_t)(4 * n) * 4), *y = malloc((size_t)(4 * n) * 4);
        fill_random(x, 4 * n, 9 + (unsigned)c, -1, 1);
        OnnxBuilder *b = ob_new(17);
        ob_input(b, "x", F32, 3, d, NULL);
        ob_node(b, "DFT", "x", "f");
        ob_attr_int(b, ob_node(b, "DFT", "f", "y"), "inverse", 1);
        ob_output(b, "y");
        TIn in = {F32, 3, {2, n, 2}, x};
        crun_status st = run1(b, &in, 1, y, (size_t)(4 * n) * 4, NULL);
        ob_free(b);
        char why[200];
        bool ok = st == CRUN_OK && floats_close(y, x, 4 * n, 1e-5, 1e-5, why, sizeof why);
        free(x);
        free(y);
        CHECK_OK(st);
        CHECK_MSG(ok, "n = %lld: %s", (long long)n, why);
    }
}

TEST(stft_frames_and_errors)
{
    /* 1..8, frames of 4 every 2: 3 frames; frame 0 = [1,2,3,4] -> 10, -2 + 2i, -2. */
    float s[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[32];
    int64_t ds[3] = {1, 8, 1}, d0[1] = {1}, step[1] = {2}, len[1] = {4};
    OnnxBuilder *b = ob_new(17);
    ob_input(b, "s", F32, 3, ds, NULL);
    ob_init_i64(b, "st", 0, d0, step);
    ob_init_i64(b, "len", 0, d0, len);
    ob_node(b, "STFT", "s,st,,len", "y");
    ob_output(b, "y");
    TIn in = {F32, 3, {1, 8, 1}, s};
    crun_tensor t;
    CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
    ob_free(b);
    int64_t want_dims[4] = {1, 3, 3, 2};
    CHECK(dims_are(&t, 4, want_dims));
    float want0[6] = {10, 0, -2, 2, -2, 0}, want2[6] = {26, 0, -2, 2, -2, 0};
    CHECK_FLOATS(y, want0, 6, 1e-6, 1e-6);
    CHECK_FLOATS(y + 12, want2, 6, 1e-6, 1e-6);
    /* A window of another length than frame_length, and a zero step, are refused. */
    float win[3] = {1, 1, 1};
    int64_t dw[1] = {3}, zero[1] = {0};
    for (int c = 0; c < 2; c++) {
        b = ob_new(17);
        ob_input(b, "s", F32, 3, ds, NULL);
        ob_init_i64(b, "st", 0, d0, c ? zero : step);
        ob_init_i64(b, "len", 0, d0, len);
        ob_init_f32(b, "w", 1, dw, win);
        ob_node(b, "STFT", c ? "s,st,,len" : "s,st,w,len", "y");
        ob_output(b, "y");
        CHECK_STATUS(run1(b, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
        CHECK(strstr(crun_last_error(), c ? "frame_step" : "frame_length"));
        ob_free(b);
    }
}

static crun_status window(const char *op, int64_t size, int periodic, crun_dtype dt, void *y, size_t max,
                          crun_tensor *t)
{
    int64_t d0[1] = {1};
    OnnxBuilder *b = ob_new(17);
    ob_input(b, "n", I64, 0, d0, NULL);
    Onnx__NodeProto *n = ob_node(b, op, "n", "y");
    ob_attr_int(b, n, "periodic", periodic);
    ob_attr_int(b, n, "output_datatype", dt);
    ob_output(b, "y");
    TIn in = {I64, 0, {0}, &size};
    crun_status st = run1(b, &in, 1, y, max, t);
    ob_free(b);
    return st;
}

TEST(window_functions)
{
    float y[8];
    double yd[4];
    int32_t yi[4];
    crun_tensor t;
    CHECK_OK(window("HannWindow", 4, 1, F32, y, sizeof y, &t));
    float hann[4] = {0, 0.5f, 1, 0.5f};
    CHECK(t.rank == 1 && t.dims[0] == 4);
    CHECK_FLOATS(y, hann, 4, 1e-6, 1e-7);
    CHECK_OK(window("HannWindow", 3, 0, F64, yd, sizeof yd, &t));
    CHECK(t.dtype == F64 && fabs(yd[0]) < 1e-15 && fabs(yd[1] - 1) < 1e-15 && fabs(yd[2]) < 1e-15);
    CHECK_OK(window("BlackmanWindow", 4, 1, F32, y, sizeof y, &t));
    float black[4] = {0, 0.34f, 1, 0.34f};
    CHECK_FLOATS(y, black, 4, 1e-6, 1e-7);
    CHECK_OK(window("HammingWindow", 1, 0, F32, y, sizeof y, &t)); /* a symmetric window of 1 */
    CHECK(t.dims[0] == 1 && y[0] == 1);
    CHECK_OK(window("HammingWindow", 2, 1, F32, y, sizeof y, &t));
    CHECK_NEAR(y[0], 4.0 / 46.0, 1e-7);
    CHECK_NEAR(y[1], 1.0, 1e-7);
    CHECK_OK(window("HannWindow", 4, 1, I32, yi, sizeof yi, &t)); /* integer output truncates */
    CHECK(t.dtype == I32 && yi[0] == 0 && yi[1] == 0 && yi[2] == 1 && yi[3] == 0);
    CHECK_OK(window("HannWindow", 0, 1, F32, y, sizeof y, &t));
    CHECK(t.rank == 1 && t.dims[0] == 0);
    CHECK_STATUS(window("HannWindow", -1, 1, F32, y, sizeof y, &t), CRUN_ERR_INVALID_MODEL);
    CHECK_STATUS(window("HannWindow", 4, 1, CRUN_DTYPE_STRING, y, sizeof y, &t), CRUN_ERR_INVALID_MODEL);
}

TEST(mel_weight_matrix_hand_checked)
{
    /* 3 bins, dft 16 (9 spectrogram bins), 8 kHz, 100 Hz to 4 kHz: the 5 mel points fall on
     * 100, 440, 924, 1615, 2598 Hz, i.e. bins floor(17 f / 8000) = 0, 0, 1, 3, 5. */
    int64_t d0[1] = {1}, v[3] = {3, 16, 8000};
    float lo = 100, hi = 4000, y[27];
    OnnxBuilder *b = ob_new(17);
    ob_init_i64(b, "bins", 0, d0, &v[0]);
    ob_init_i64(b, "dft", 0, d0, &v[1]);
    ob_init_i64(b, "rate", 0, d0, &v[2]);
    ob_input(b, "lo", F32, 0, d0, NULL);
    ob_input(b, "hi", F32, 0, d0, NULL);
    ob_node(b, "MelWeightMatrix", "bins,dft,rate,lo,hi", "y");
    ob_output(b, "y");
    TIn in[2] = {{F32, 0, {0}, &lo}, {F32, 0, {0}, &hi}};
    crun_tensor t;
    CHECK_OK(run1(b, in, 2, y, sizeof y, &t));
    ob_free(b);
    int64_t want_dims[2] = {9, 3};
    CHECK(dims_are(&t, 2, want_dims));
    float want[27] = {1, 0, 0, 0, 1, 0, 0, 0.5f, 0.5f, 0, 0, 1, 0, 0, 0.5f};
    CHECK_FLOATS(y, want, 27, 0, 1e-7);
}

/* ================= regions ================= */

static OnnxBuilder *roialign_model(int opset, int64_t n_batch, const char *mode, const char *ctm)
{
    int64_t dx[4] = {n_batch, 1, 2, 2}, dr[2] = {1, 4}, db[1] = {1};
    OnnxBuilder *b = ob_new(opset);
    ob_input(b, "x", F32, 4, dx, NULL);
    ob_input(b, "r", F32, 2, dr, NULL);
    ob_input(b, "i", I64, 1, db, NULL);
    Onnx__NodeProto *n = ob_node(b, "RoiAlign", "x,r,i", "y");
    ob_attr_int(b, n, "sampling_ratio", 1);
    if (mode)
        ob_attr_string(b, n, "mode", mode);
    if (ctm)
        ob_attr_string(b, n, "coordinate_transformation_mode", ctm);
    ob_output(b, "y");
    return b;
}

TEST(roialign_modes_and_batch_check)
{
    /* [[1,2],[3,4]], roi (0,0)-(1,1), one sample per bin: at (0.5, 0.5) without the half-pixel
     * shift (opset 10's only form) -> 2.5; at (0, 0) with it (opset 16's default) -> 1; max
     * mode takes the largest weighted corner 0.25 * 4 = 1. */
    float x[4] = {1, 2, 3, 4}, roi[4] = {0, 0, 1, 1}, y[1];
    int64_t bi[1] = {0};
    TIn in[3] = {{F32, 4, {1, 1, 2, 2}, x}, {F32, 2, {1, 4}, roi}, {I64, 1, {1}, bi}};
    struct {
        int opset;
        const char *mode, *ctm;
        float want;
    } cases[] = {{10, NULL, NULL, 2.5f},
                 {16, NULL, NULL, 1.0f},
                 {16, "avg", "output_half_pixel", 2.5f},
                 {16, "max", "output_half_pixel", 1.0f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        OnnxBuilder *b = roialign_model(cases[c].opset, 1, cases[c].mode, cases[c].ctm);
        CHECK_OK(run1(b, in, 3, y, sizeof y, NULL));
        ob_free(b);
        CHECK_MSG(fabsf(y[0] - cases[c].want) < 1e-6f, "case %zu: %g, expected %g", c, y[0], cases[c].want);
    }
    bi[0] = 1; /* only one image */
    OnnxBuilder *b = roialign_model(16, 1, NULL, NULL);
    CHECK_STATUS(run1(b, in, 3, y, sizeof y, NULL), CRUN_ERR_RUNTIME);
    ob_free(b);
    b = roialign_model(16, 1, "min", NULL);
    CHECK_STATUS(run1(b, in, 3, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    ob_free(b);
}

TEST(maxroipool_bins)
{
    float x[16], y[4];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    float rois[5] = {0, 0, 0, 3, 3};
    int64_t dx[4] = {1, 1, 4, 4}, dr[2] = {1, 5}, pooled[2] = {2, 2};
    OnnxBuilder *b = ob_new(1);
    ob_input(b, "x", F32, 4, dx, NULL);
    ob_input(b, "r", F32, 2, dr, NULL);
    ob_attr_ints(b, ob_node(b, "MaxRoiPool", "x,r", "y"), "pooled_shape", pooled, 2);
    ob_output(b, "y");
    TIn in[2] = {{F32, 4, {1, 1, 4, 4}, x}, {F32, 2, {1, 5}, rois}};
    crun_tensor t;
    CHECK_OK(run1(b, in, 2, y, sizeof y, &t));
    float want[4] = {5, 7, 13, 15};
    int64_t want_dims[4] = {1, 1, 2, 2};
    CHECK(dims_are(&t, 4, want_dims));
    CHECK_FLOATS(y, want, 4, 0, 0);
    rois[0] = 1; /* batch index past the batch */
    CHECK_STATUS(run1(b, in, 2, y, sizeof y, NULL), CRUN_ERR_RUNTIME);
    ob_free(b);
}

/* NMS on one batch, one class of 3 boxes; returns the selected box indices (-1 padded). */
static crun_status nms(const float *scores, int64_t max_out, float iou, const float *score_thr, int center,
                       int64_t *sel, int64_t *count)
{
    float boxes_corner[12] = {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 2, 1, 3};
    float boxes_center[12] = {0.5f, 0.5f, 1, 1, 0.6f, 0.5f, 1, 1, 2.5f, 0.5f, 1, 1};
    int64_t db[3] = {1, 3, 4}, ds[3] = {1, 1, 3}, d0[1] = {1};
    OnnxBuilder *b = ob_new(11);
    ob_input(b, "b", F32, 3, db, NULL);
    ob_input(b, "s", F32, 3, ds, NULL);
    if (max_out >= 0)
        ob_init_i64(b, "m", 0, d0, &max_out);
    ob_init_f32(b, "iou", 0, d0, &iou);
    if (score_thr)
        ob_init_f32(b, "st", 0, d0, score_thr);
    Onnx__NodeProto *n = ob_node(b, "NonMaxSuppression",
                                 score_thr      ? "b,s,m,iou,st"
                                 : max_out >= 0 ? "b,s,m,iou"
                                                : "b,s,,iou",
                                 "y");
    ob_attr_int(b, n, "center_point_box", center);
    ob_output(b, "y");
    TIn in[2] = {{F32, 3, {1, 3, 4}, center ? boxes_center : boxes_corner}, {F32, 3, {1, 1, 3}, scores}};
    int64_t out[9];
    crun_tensor t;
    crun_status st = run1(b, in, 2, out, sizeof out, &t);
    ob_free(b);
    if (st != CRUN_OK)
        return st;
    *count = t.dims[0];
    for (int64_t i = 0; i < *count; i++)
        sel[i] = out[3 * i + 2];
    return t.rank == 2 && t.dims[1] == 3 ? CRUN_OK : CRUN_ERR_RUNTIME;
}

TEST(nonmaxsuppression_forms)
{
    /* Boxes 0 and 1 overlap with IoU 0.9 / 1.1; box 2 is apart. */
    float scores[3] = {0.9f, 0.8f, 0.7f}, equal[3] = {0.5f, 0.5f, 0.5f}, thr = 0.75f;
    int64_t sel[3], n;
    CHECK_OK(nms(scores, 10, 0.5f, NULL, 0, sel, &n));
    CHECK(n == 2 && sel[0] == 0 && sel[1] == 2);
    CHECK_OK(nms(scores, 10, 0.5f, NULL, 1, sel, &n)); /* the same boxes as centers and sizes */
    CHECK(n == 2 && sel[0] == 0 && sel[1] == 2);
    CHECK_OK(nms(scores, 10, 0.95f, NULL, 0, sel, &n)); /* a looser threshold keeps all */
    CHECK(n == 3);
    CHECK_OK(nms(scores, 10, 0.5f, &thr, 0, sel, &n));
    CHECK(n == 1 && sel[0] == 0);
    CHECK_OK(nms(scores, 1, 0.95f, NULL, 0, sel, &n));
    CHECK(n == 1 && sel[0] == 0);
    CHECK_OK(nms(scores, -1, 0.5f, NULL, 0, sel, &n)); /* no max_output_boxes_per_class: none */
    CHECK(n == 0);
    CHECK_OK(nms(equal, 10, 0.95f, NULL, 0, sel, &n)); /* ties keep index order */
    CHECK(n == 3 && sel[0] == 0 && sel[1] == 1 && sel[2] == 2);
}

/* ================= Einsum, Det ================= */

static crun_status einsum(const char *eq, crun_dtype dt, int n_in, const TIn *in, void *y, size_t max, crun_tensor *t)
{
    OnnxBuilder *b = ob_new(12);
    char names[32] = "";
    for (int i = 0; i < n_in; i++) {
        char nm[4] = {'x', (char)('0' + i), 0};
        ob_input(b, nm, dt, in[i].rank, in[i].dims, NULL);
        strcat(names, i ? "," : "");
        strcat(names, nm);
    }
    ob_attr_string(b, ob_node(b, "Einsum", names, "y"), "equation", eq);
    ob_output(b, "y");
    crun_status st = run1(b, in, n_in, y, max, t);
    ob_free(b);
    return st;
}

TEST(einsum_implicit_output_diagonals_and_errors)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, y[9];
    TIn in1 = {F32, 2, {2, 3}, a};
    crun_tensor t;
    /* Implicit output: letters used once in ASCII order, so "ba" transposes and "Ba" does not. */
    CHECK_OK(einsum("ba", F32, 1, &in1, y, sizeof y, &t));
    float tr[6] = {1, 4, 2, 5, 3, 6};
    CHECK(t.dims[0] == 3 && t.dims[1] == 2);
    CHECK_FLOATS(y, tr, 6, 0, 0);
    CHECK_OK(einsum("Ba", F32, 1, &in1, y, sizeof y, &t));
    CHECK(t.dims[0] == 2 && t.dims[1] == 3);
    CHECK_FLOATS(y, a, 6, 0, 0);
    /* Diagonal and trace of a 3x3 with blanks in the equation. */
    float m[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    TIn in3 = {F32, 2, {3, 3}, m};
    CHECK_OK(einsum(" i i -> i", F32, 1, &in3, y, sizeof y, &t));
    float diag[3] = {1, 5, 9};
    CHECK(t.rank == 1 && t.dims[0] == 3);
    CHECK_FLOATS(y, diag, 3, 0, 0);
    CHECK_OK(einsum("ii", F32, 1, &in3, y, sizeof y, &t));
    CHECK(t.rank == 0 && y[0] == 15);
    /* Integers wrap: 100*2 + 100*1 = 300 = 44 in int8. */
    int8_t u[2] = {100, 100}, v[2] = {2, 1}, r[1];
    TIn ini[2] = {{I8, 1, {2}, u}, {I8, 1, {2}, v}};
    CHECK_OK(einsum("i,i", I8, 2, ini, r, 1, &t));
    CHECK(r[0] == 44);
    /* Ellipsis broadcasting: [2,1,2] x [3,2] summed over the last axis -> [2,3]. */
    float p[4] = {1, 2, 3, 4}, q[6] = {1, 0, 0, 1, 1, 1};
    TIn inb[2] = {{F32, 3, {2, 1, 2}, p}, {F32, 2, {3, 2}, q}};
    CHECK_OK(einsum("...j,...j->...", F32, 2, inb, y, sizeof y, &t));
    float want_b[6] = {1, 2, 3, 3, 4, 7};
    CHECK(t.rank == 2 && t.dims[0] == 2 && t.dims[1] == 3);
    CHECK_FLOATS(y, want_b, 6, 0, 0);
    /* Errors: a bad equation, a term count that differs from the inputs, mismatched sizes,
     * an output label no input has. */
    CHECK_STATUS(einsum("i..j", F32, 1, &in1, y, sizeof y, &t), CRUN_ERR_INVALID_MODEL);
    CHECK_STATUS(einsum("ij,jk", F32, 1, &in1, y, sizeof y, &t), CRUN_ERR_INVALID_MODEL);
    CHECK_STATUS(einsum("ii", F32, 1, &in1, y, sizeof y, &t), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "label 'i' has sizes 2 and 3"));
    CHECK_STATUS(einsum("ij->k", F32, 1, &in1, y, sizeof y, &t), CRUN_ERR_INVALID_MODEL);
}

TEST(det_with_pivoting_and_batches)
{
    /* [[1,2],[3,4]] -> -2; a permutation needing a row swap -> -3; a singular matrix -> 0. */
    float x[12] = {1, 2, 3, 4, 0, 1, 1, 0, 2, 4, 1, 2}, y[3];
    int64_t d[3] = {3, 2, 2};
    OnnxBuilder *b = ob_new(11);
    ob_input(b, "x", F32, 3, d, NULL);
    ob_node(b, "Det", "x", "y");
    ob_output(b, "y");
    TIn in = {F32, 3, {3, 2, 2}, x};
    crun_tensor t;
    CHECK_OK(run1(b, &in, 1, y, sizeof y, &t));
    ob_free(b);
    float want[3] = {-2, -1, 0};
    CHECK(t.rank == 1 && t.dims[0] == 3);
    CHECK_FLOATS(y, want, 3, 1e-6, 1e-6);
    float x3[9] = {0, 1, 0, 1, 0, 0, 0, 0, 3};
    int64_t d3[2] = {3, 3};
    b = ob_new(11);
    ob_input(b, "x", F32, 2, d3, NULL);
    ob_node(b, "Det", "x", "y");
    ob_output(b, "y");
    TIn in3 = {F32, 2, {3, 3}, x3};
    CHECK_OK(run1(b, &in3, 1, y, sizeof y, &t));
    ob_free(b);
    CHECK(t.rank == 0);
    CHECK_NEAR(y[0], -3, 1e-6);
}

TEST(einsum_gemm_matches_reference)
{
    struct {
        const char *eq;
        int ra, rb;
        int64_t da[4], db[4];
        long n_out;
    } cases[] = {
        {"bhqd,bhkd->bhqk", 4, 4, {2, 3, 5, 8}, {2, 3, 7, 8}, 2 * 3 * 5 * 7},
        {"bqhd,bkhd->bhqk", 4, 4, {2, 5, 3, 8}, {2, 7, 3, 8}, 2 * 3 * 5 * 7},
        {"ik,kj->ji", 2, 2, {40, 70}, {70, 33}, 33 * 40},
        {"i...j,j...k->...ik", 4, 3, {2, 1, 4, 3}, {3, 4, 2}, 4 * 2 * 2},
        {"ab,ab->", 2, 2, {3, 4}, {3, 4}, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        long na = 1, nb = 1;
        for (int i = 0; i < cases[c].ra; i++)
            na *= cases[c].da[i];
        for (int i = 0; i < cases[c].rb; i++)
            nb *= cases[c].db[i];
        float *a = malloc((size_t)na * 4), *bv = malloc((size_t)nb * 4);
        fill_random(a, na, 71, -1, 1);
        fill_random(bv, nb, 72, -1, 1);
        OnnxBuilder *b = ob_new(12);
        ob_input(b, "a", F32, cases[c].ra, cases[c].da, NULL);
        ob_input(b, "b", F32, cases[c].rb, cases[c].db, NULL);
        ob_attr_string(b, ob_node(b, "Einsum", "a,b", "y"), "equation", cases[c].eq);
        ob_output(b, "y");
        TIn in[2] = {{F32, cases[c].ra, {0}, a}, {F32, cases[c].rb, {0}, bv}};
        memcpy(in[0].dims, cases[c].da, sizeof cases[c].da);
        memcpy(in[1].dims, cases[c].db, sizeof cases[c].db);
        char why[200];
        bool ok = best_vs_reference(b, in, 2, 1, cases[c].n_out, 1e-5, 1e-6, why, sizeof why);
        ob_free(b);
        free(a);
        free(bv);
        CHECK_MSG(ok, "%s: %s", cases[c].eq, why);
    }
}
