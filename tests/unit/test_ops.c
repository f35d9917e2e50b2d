/* test_ops.c - every op of the foundation set against hand-checked values and edge cases. */
#include <float.h>
#include <limits.h>
#include <stdlib.h>

#include "testutil.h"

#define F32 CRUN_DTYPE_FLOAT
#define I64 CRUN_DTYPE_INT64
#define I32 CRUN_DTYPE_INT32

/* One-node model y = op(x[, ...]) with a float input x of the given shape. */
static OnnxBuilder *unary_model(int opset, const char *op, int rank, const int64_t *dims)
{
    OnnxBuilder *b = ob_new(opset);
    ob_input(b, "x", F32, rank, dims, NULL);
    ob_node(b, op, "x", "y");
    ob_output(b, "y");
    return b;
}

/* ---- elementwise ---- */

TEST(add_broadcasts_row_vector)
{
    int64_t da[2] = {2, 3}, db[1] = {3};
    float a[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30}, want[6] = {11, 22, 33, 14, 25, 36}, y[6];
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "a", F32, 2, da, NULL);
    ob_input(b, "b", F32, 1, db, NULL);
    ob_node(b, "Add", "a,b", "y");
    ob_output(b, "y");
    TIn in[2] = {{F32, 2, {2, 3}, a}, {F32, 1, {3}, bv}};
    crun_tensor t;
    long n = run_f32(b, in, 2, y, 6, &t);
    ob_free(b);
    CHECK(n == 6 && t.rank == 2 && t.dims[0] == 2 && t.dims[1] == 3);
    CHECK_FLOATS(y, want, 6, 0, 0);
}

TEST(mul_broadcasts_both_ways)
{
    /* [3,1] * [1,4] -> [3,4] */
    int64_t da[2] = {3, 1}, db[2] = {1, 4};
    float a[3] = {1, 2, 3}, bv[4] = {1, 10, 100, 1000}, y[12];
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "a", F32, 2, da, NULL);
    ob_input(b, "b", F32, 2, db, NULL);
    ob_node(b, "Mul", "a,b", "y");
    ob_output(b, "y");
    TIn in[2] = {{F32, 2, {3, 1}, a}, {F32, 2, {1, 4}, bv}};
    long n = run_f32(b, in, 2, y, 12, NULL);
    ob_free(b);
    CHECK(n == 12);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            CHECK_NEAR(y[i * 4 + j], a[i] * bv[j], 0);
}

TEST(integer_arithmetic_wraps_and_never_traps)
{
    int64_t d[1] = {4};
    int32_t a[4] = {INT32_MAX, INT32_MIN, 7, -7}, bv[4] = {1, -1, 0, 2};
    const char *ops[] = {"Add", "Div"};
    int32_t want[2][4] = {{INT32_MIN, INT32_MAX, 7, -5}, {INT32_MAX, INT32_MIN, 0, -3}};
    for (int k = 0; k < 2; k++) {
        OnnxBuilder *b = ob_new(13);
        ob_input(b, "a", I32, 1, d, NULL);
        ob_input(b, "b", I32, 1, d, NULL);
        ob_node(b, ops[k], "a,b", "y");
        ob_output(b, "y");
        TIn in[2] = {{I32, 1, {4}, a}, {I32, 1, {4}, bv}};
        int32_t y[4];
        long n = run_f32(b, in, 2, (float *)y, 4, NULL);
        ob_free(b);
        CHECK(n == 4);
        for (int i = 0; i < 4; i++)
            CHECK_MSG(y[i] == want[k][i], "%s element %d = %d, expected %d", ops[k], i, y[i], want[k][i]);
    }
}

TEST(pow_with_integer_exponent)
{
    int64_t d[1] = {3};
    float a[3] = {2, -3, 0.5f}, y[3];
    int64_t e[3] = {3, 2, -1};
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "a", F32, 1, d, NULL);
    ob_input(b, "e", I64, 1, d, NULL);
    ob_node(b, "Pow", "a,e", "y");
    ob_output(b, "y");
    TIn in[2] = {{F32, 1, {3}, a}, {I64, 1, {3}, e}};
    long n = run_f32(b, in, 2, y, 3, NULL);
    ob_free(b);
    float want[3] = {8, 9, 2};
    CHECK(n == 3);
    CHECK_FLOATS(y, want, 3, 1e-6, 0);
}

TEST(activations_match_their_definitions)
{
    int64_t d[1] = {5};
    float x[5] = {-4, -1, 0, 1, 3};
    struct {
        const char *op;
        float alpha;
        float want[5];
    } cases[] = {
        {"Relu", 0, {0, 0, 0, 1, 3}},
        {"LeakyRelu", 0.1f, {-0.4f, -0.1f, 0, 1, 3}},
        {"Sigmoid", 0, {0.01798621f, 0.26894142f, 0.5f, 0.73105858f, 0.95257413f}},
        {"HardSigmoid", 0, {0, 0.3f, 0.5f, 0.7f, 1}},
        {"HardSwish", 0, {0, -1.0f / 3, 0, 2.0f / 3, 3}},
        {"Tanh", 0, {-0.99932930f, -0.76159416f, 0, 0.76159416f, 0.99505475f}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        OnnxBuilder *b = unary_model(14, cases[c].op, 1, d);
        if (cases[c].alpha)
            ob_attr_float(b, ob_model(b)->graph->node[0], "alpha", cases[c].alpha);
        TIn in = {F32, 1, {5}, x};
        float y[5];
        long n = run_f32(b, &in, 1, y, 5, NULL);
        ob_free(b);
        CHECK_MSG(n == 5, "%s did not run", cases[c].op);
        CHECK_FLOATS(y, cases[c].want, 5, 1e-6, 1e-7);
    }
}

TEST(clip_bounds_from_attributes_and_inputs)
{
    int64_t d[1] = {4}, sd[1] = {0};
    float x[4] = {-2, -0.5f, 0.5f, 2}, y[4];
    /* opset 6: attributes */
    OnnxBuilder *b = unary_model(6, "Clip", 1, d);
    ob_attr_float(b, ob_model(b)->graph->node[0], "min", -1);
    ob_attr_float(b, ob_model(b)->graph->node[0], "max", 1);
    TIn in = {F32, 1, {4}, x};
    long n = run_f32(b, &in, 1, y, 4, NULL);
    ob_free(b);
    float want[4] = {-1, -0.5f, 0.5f, 1};
    CHECK(n == 4);
    CHECK_FLOATS(y, want, 4, 0, 0);
    /* opset 13: max only, as an input; min omitted */
    b = ob_new(13);
    ob_input(b, "x", F32, 1, d, NULL);
    float hi = 0;
    ob_init_f32(b, "hi", 0, sd, &hi);
    ob_node(b, "Clip", "x,,hi", "y");
    ob_output(b, "y");
    n = run_f32(b, &in, 1, y, 4, NULL);
    ob_free(b);
    float want2[4] = {-2, -0.5f, 0, 0};
    CHECK(n == 4);
    CHECK_FLOATS(y, want2, 4, 0, 0);
}

TEST(unary_math)
{
    int64_t d[1] = {3};
    float x[3] = {0.25f, 1, 4};
    struct {
        const char *op;
        float want[3];
    } cases[] = {{"Sqrt", {0.5f, 1, 2}},     {"Reciprocal", {4, 1, 0.25f}}, {"Neg", {-0.25f, -1, -4}},
                 {"Exp", {1.2840254f, 2.7182818f, 54.59815f}}, {"Log", {-1.3862944f, 0, 1.3862944f}},
                 {"Floor", {0, 1, 4}},      {"Ceil", {1, 1, 4}},           {"Abs", {0.25f, 1, 4}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        OnnxBuilder *b = unary_model(13, cases[c].op, 1, d);
        TIn in = {F32, 1, {3}, x};
        float y[3];
        long n = run_f32(b, &in, 1, y, 3, NULL);
        ob_free(b);
        CHECK_MSG(n == 3, "%s did not run", cases[c].op);
        CHECK_FLOATS(y, cases[c].want, 3, 1e-6, 0);
    }
}

/* ---- Conv ---- */

/* Direct convolution of one image, 2-D, for checking: x[C][H][W], w[M][C/g][KH][KW]. */
static void conv_ref(const float *x, const float *w, const float *bias, float *y, int C, int H, int W, int M, int KH,
                     int KW, int sh, int sw, int ph, int pw, int dh, int dw, int g, int OH, int OW)
{
    int cg = C / g, mg = M / g;
    for (int m = 0; m < M; m++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double s = bias ? bias[m] : 0;
                for (int c = 0; c < cg; c++)
                    for (int ky = 0; ky < KH; ky++)
                        for (int kx = 0; kx < KW; kx++) {
                            int iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                s += x[((m / mg) * cg + c) * H * W + iy * W + ix] * w[((m * cg + c) * KH + ky) * KW + kx];
                        }
                y[(m * OH + oy) * OW + ox] = (float)s;
            }
}

TEST(conv_hand_checked)
{
    /* 1x1x3x3 image, 2x2 kernel of ones, no padding: sums of 2x2 windows. */
    int64_t dx[4] = {1, 1, 3, 3}, dw[4] = {1, 1, 2, 2};
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 1, 1, 1}, y[4];
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 4, dx, NULL);
    ob_init_f32(b, "w", 4, dw, w);
    ob_node(b, "Conv", "x,w", "y");
    ob_output(b, "y");
    TIn in = {F32, 4, {1, 1, 3, 3}, x};
    crun_tensor t;
    long n = run_f32(b, &in, 1, y, 4, &t);
    ob_free(b);
    float want[4] = {12, 16, 24, 28};
    CHECK(n == 4 && t.dims[2] == 2 && t.dims[3] == 2);
    CHECK_FLOATS(y, want, 4, 0, 0);
}

typedef struct ConvCase {
    int C, H, W, M, KH, KW, sh, sw, ph, pw, dh, dw, g;
    bool bias;
} ConvCase;

TEST(conv_against_direct_loop_on_odd_shapes)
{
    ConvCase cases[] = {
        {3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},  /* 3x3 same padding */
        {4, 11, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2, false},/* groups, stride 2 */
        {6, 9, 9, 6, 3, 3, 1, 1, 2, 2, 2, 2, 6, true},  /* depthwise dilated */
        {5, 5, 5, 10, 5, 5, 2, 1, 2, 2, 1, 1, 5, true}, /* depthwise multiplier 2 (not the dw kernel) */
        {17, 4, 13, 33, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},/* pointwise, odd sizes */
        {3, 8, 8, 7, 7, 1, 3, 1, 3, 0, 1, 1, 1, false},  /* 7x1 kernel */
        {8, 3, 3, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1, true},   /* output 1x1 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ConvCase k = cases[c];
        int OH = (k.H + 2 * k.ph - ((k.KH - 1) * k.dh + 1)) / k.sh + 1;
        int OW = (k.W + 2 * k.pw - ((k.KW - 1) * k.dw + 1)) / k.sw + 1;
        long nx = (long)k.C * k.H * k.W, nw = (long)k.M * (k.C / k.g) * k.KH * k.KW, ny = (long)k.M * OH * OW;
        float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), bias[64], *y = malloc(ny * sizeof *y),
              *want = malloc(ny * sizeof *want);
        fill_random(x, nx, (unsigned)c, -1, 1);
        fill_random(w, nw, (unsigned)c + 100, -1, 1);
        fill_random(bias, k.M, (unsigned)c + 200, -1, 1);
        conv_ref(x, w, k.bias ? bias : NULL, want, k.C, k.H, k.W, k.M, k.KH, k.KW, k.sh, k.sw, k.ph, k.pw, k.dh, k.dw,
                 k.g, OH, OW);
        int64_t dx[4] = {1, k.C, k.H, k.W}, dw[4] = {k.M, k.C / k.g, k.KH, k.KW}, db[1] = {k.M};
        int64_t strides[2] = {k.sh, k.sw}, pads[4] = {k.ph, k.pw, k.ph, k.pw}, dil[2] = {k.dh, k.dw};
        OnnxBuilder *b = ob_new(13);
        ob_input(b, "x", F32, 4, dx, NULL);
        ob_init_f32(b, "w", 4, dw, w);
        ob_init_f32(b, "b", 1, db, bias);
        Onnx__NodeProto *n = ob_node(b, "Conv", k.bias ? "x,w,b" : "x,w", "y");
        ob_attr_ints(b, n, "strides", strides, 2);
        ob_attr_ints(b, n, "pads", pads, 4);
        ob_attr_ints(b, n, "dilations", dil, 2);
        ob_attr_int(b, n, "group", k.g);
        ob_output(b, "y");
        TIn in = {F32, 4, {1, k.C, k.H, k.W}, x};
        long got = run_f32(b, &in, 1, y, ny, NULL);
        ob_free(b);
        char why[256];
        bool ok = got == ny && floats_close(y, want, ny, 1e-4, 1e-5, why, sizeof why);
        free(x);
        free(w);
        free(y);
        free(want);
        CHECK_MSG(ok, "case %zu: %s", c, got == ny ? why : "did not run");
    }
}

TEST(conv_auto_pad_same_and_1d_3d)
{
    /* SAME_UPPER with stride 2 on 5 wide: output ceil(5/2) = 3. */
    int64_t dx[4] = {1, 1, 5, 5}, dw[4] = {1, 1, 3, 3}, strides[2] = {2, 2};
    float x[25], w[9];
    fill_random(x, 25, 1, 0, 1);
    fill_random(w, 9, 2, 0, 1);
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 4, dx, NULL);
    ob_init_f32(b, "w", 4, dw, w);
    Onnx__NodeProto *n = ob_node(b, "Conv", "x,w", "y");
    ob_attr_string(b, n, "auto_pad", "SAME_UPPER");
    ob_attr_ints(b, n, "strides", strides, 2);
    ob_output(b, "y");
    TIn in = {F32, 4, {1, 1, 5, 5}, x};
    float y[9], want[9];
    crun_tensor t;
    long got = run_f32(b, &in, 1, y, 9, &t);
    ob_free(b);
    CHECK(got == 9 && t.dims[2] == 3 && t.dims[3] == 3);
    conv_ref(x, w, NULL, want, 1, 5, 5, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 3, 3);
    CHECK_FLOATS(y, want, 9, 1e-5, 1e-6);

    /* 1-D: [1,2,6] * [1,2,3] valid -> [1,1,4] */
    int64_t dx1[3] = {1, 2, 6}, dw1[3] = {1, 2, 3};
    float x1[12], w1[6], y1[4];
    fill_random(x1, 12, 3, -1, 1);
    fill_random(w1, 6, 4, -1, 1);
    b = ob_new(13);
    ob_input(b, "x", F32, 3, dx1, NULL);
    ob_init_f32(b, "w", 3, dw1, w1);
    ob_node(b, "Conv", "x,w", "y");
    ob_output(b, "y");
    TIn in1 = {F32, 3, {1, 2, 6}, x1};
    got = run_f32(b, &in1, 1, y1, 4, NULL);
    ob_free(b);
    CHECK(got == 4);
    for (int o = 0; o < 4; o++) {
        double s = 0;
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 3; k++)
                s += x1[c * 6 + o + k] * w1[c * 3 + k];
        CHECK_NEAR(y1[o], s, 1e-5);
    }

    /* 3-D: [1,1,3,3,3] with a 2x2x2 kernel of ones -> sums of 2x2x2 cubes */
    int64_t dx3[5] = {1, 1, 3, 3, 3}, dw3[5] = {1, 1, 2, 2, 2};
    float x3[27], w3[8], y3[8];
    for (int i = 0; i < 27; i++)
        x3[i] = (float)i;
    for (int i = 0; i < 8; i++)
        w3[i] = 1;
    b = ob_new(13);
    ob_input(b, "x", F32, 5, dx3, NULL);
    ob_init_f32(b, "w", 5, dw3, w3);
    ob_node(b, "Conv", "x,w", "y");
    ob_output(b, "y");
    TIn in3 = {F32, 5, {1, 1, 3, 3, 3}, x3};
    got = run_f32(b, &in3, 1, y3, 8, NULL);
    ob_free(b);
    CHECK(got == 8);
    /* Cube at (0,0,0): 0+1+3+4+9+10+12+13 = 52; each step in x adds 8, y 24, z 72. */
    CHECK_NEAR(y3[0], 52, 0);
    CHECK_NEAR(y3[1], 60, 0);
    CHECK_NEAR(y3[2], 76, 0);
    CHECK_NEAR(y3[4], 124, 0);
}

/* ---- Gemm / MatMul ---- */

TEST(gemm_transposes_alpha_beta_and_bias_shapes)
{
    /* A^T (2x3 stored 3x2), B^T (3x4 stored 4x3): Y = 0.5 A B + 2 C */
    float a[6] = {1, 2, 3, 4, 5, 6}, bm[12], y[8];
    for (int i = 0; i < 12; i++)
        bm[i] = (float)(i % 5) - 1;
    int64_t da[2] = {3, 2}, db[2] = {4, 3};
    struct {
        int rank;
        int64_t dims[2];
        float c[8];
    } biases[] = {{1, {4, 0}, {1, 2, 3, 4}}, {2, {2, 1}, {-1, 1}}, {0, {0, 0}, {3}}, {2, {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}}};
    for (int t = 0; t < 4; t++) {
        OnnxBuilder *b = ob_new(13);
        ob_input(b, "a", F32, 2, da, NULL);
        ob_init_f32(b, "b", 2, db, bm);
        ob_init_f32(b, "c", biases[t].rank, biases[t].dims, biases[t].c);
        Onnx__NodeProto *n = ob_node(b, "Gemm", "a,b,c", "y");
        ob_attr_int(b, n, "transA", 1);
        ob_attr_int(b, n, "transB", 1);
        ob_attr_float(b, n, "alpha", 0.5f);
        ob_attr_float(b, n, "beta", 2);
        ob_output(b, "y");
        TIn in = {F32, 2, {3, 2}, a};
        long got = run_f32(b, &in, 1, y, 8, NULL);
        ob_free(b);
        CHECK(got == 8);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++) {
                double s = 0;
                for (int k = 0; k < 3; k++)
                    s += a[k * 2 + i] * bm[j * 3 + k];
                int r = biases[t].rank;
                float c = r == 0 ? biases[t].c[0] : r == 1 ? biases[t].c[j] : biases[t].dims[1] == 1 ? biases[t].c[i]
                                                                                                     : biases[t].c[i * 4 + j];
                CHECK_NEAR(y[i * 4 + j], 0.5 * s + 2 * c, 1e-5);
            }
    }
}

TEST(matmul_vectors_and_batch_broadcast)
{
    /* [2,1,3,5] x [4,5,2] -> [2,4,3,2] */
    int64_t da[4] = {2, 1, 3, 5}, db[3] = {4, 5, 2};
    float a[30], bm[40], y[48];
    fill_random(a, 30, 7, -1, 1);
    fill_random(bm, 40, 8, -1, 1);
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "a", F32, 4, da, NULL);
    ob_input(b, "b", F32, 3, db, NULL);
    ob_node(b, "MatMul", "a,b", "y");
    ob_output(b, "y");
    TIn in[2] = {{F32, 4, {2, 1, 3, 5}, a}, {F32, 3, {4, 5, 2}, bm}};
    crun_tensor t;
    long got = run_f32(b, in, 2, y, 48, &t);
    ob_free(b);
    CHECK(got == 48 && t.rank == 4 && t.dims[1] == 4);
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 4; q++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 2; j++) {
                    double s = 0;
                    for (int k = 0; k < 5; k++)
                        s += a[p * 15 + i * 5 + k] * bm[q * 10 + k * 2 + j];
                    CHECK_NEAR(y[((p * 4 + q) * 3 + i) * 2 + j], s, 1e-5);
                }
    /* 1-D x 1-D -> scalar */
    int64_t dv[1] = {4};
    float u[4] = {1, 2, 3, 4}, v[4] = {5, 6, 7, 8}, dot;
    b = ob_new(13);
    ob_input(b, "u", F32, 1, dv, NULL);
    ob_init_f32(b, "v", 1, dv, v);
    ob_node(b, "MatMul", "u,v", "y");
    ob_output(b, "y");
    TIn in1 = {F32, 1, {4}, u};
    got = run_f32(b, &in1, 1, &dot, 1, &t);
    ob_free(b);
    CHECK(got == 1 && t.rank == 0);
    CHECK_NEAR(dot, 70, 0);
}

/* ---- pooling ---- */

TEST(maxpool_and_averagepool)
{
    int64_t dx[4] = {1, 1, 4, 4}, k2[2] = {2, 2}, s2[2] = {2, 2}, pads[4] = {1, 1, 1, 1}, k3[2] = {3, 3};
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    TIn in = {F32, 4, {1, 1, 4, 4}, x};
    float y[16];
    /* MaxPool 2x2 stride 2 */
    OnnxBuilder *b = unary_model(13, "MaxPool", 4, dx);
    ob_attr_ints(b, ob_model(b)->graph->node[0], "kernel_shape", k2, 2);
    ob_attr_ints(b, ob_model(b)->graph->node[0], "strides", s2, 2);
    long n = run_f32(b, &in, 1, y, 16, NULL);
    ob_free(b);
    float w1[4] = {5, 7, 13, 15};
    CHECK(n == 4);
    CHECK_FLOATS(y, w1, 4, 0, 0);
    /* AveragePool 3x3, pads 1, count_include_pad 0 and 1 (corner: 4 of 9 cells valid) */
    for (int inc = 0; inc < 2; inc++) {
        b = unary_model(13, "AveragePool", 4, dx);
        Onnx__NodeProto *node = ob_model(b)->graph->node[0];
        ob_attr_ints(b, node, "kernel_shape", k3, 2);
        ob_attr_ints(b, node, "pads", pads, 4);
        ob_attr_int(b, node, "count_include_pad", inc);
        n = run_f32(b, &in, 1, y, 16, NULL);
        ob_free(b);
        CHECK(n == 16);
        CHECK_NEAR(y[0], (0 + 1 + 4 + 5) / (inc ? 9.0 : 4.0), 1e-6);
        CHECK_NEAR(y[5], (0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 9.0, 1e-6);
    }
    /* ceil_mode: 4 wide, kernel 3, stride 2 -> 2 windows (floor 1) */
    b = unary_model(13, "MaxPool", 4, dx);
    ob_attr_ints(b, ob_model(b)->graph->node[0], "kernel_shape", k3, 2);
    ob_attr_ints(b, ob_model(b)->graph->node[0], "strides", s2, 2);
    ob_attr_int(b, ob_model(b)->graph->node[0], "ceil_mode", 1);
    crun_tensor t;
    n = run_f32(b, &in, 1, y, 16, &t);
    ob_free(b);
    CHECK(n == 4 && t.dims[2] == 2);
    float w2[4] = {10, 11, 14, 15};
    CHECK_FLOATS(y, w2, 4, 0, 0);
}

TEST(maxpool_indices_output)
{
    int64_t dx[4] = {1, 1, 2, 4}, k2[2] = {2, 2}, s2[2] = {2, 2};
    float x[8] = {1, 9, 2, 3, 4, 5, 8, 6};
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 4, dx, NULL);
    Onnx__NodeProto *n = ob_node(b, "MaxPool", "x", "y,idx");
    ob_attr_ints(b, n, "kernel_shape", k2, 2);
    ob_attr_ints(b, n, "strides", s2, 2);
    ob_output(b, "y");
    ob_output(b, "idx");
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK(m);
    TIn in = {F32, 4, {1, 1, 2, 4}, x};
    crun_session *s = run_inputs(m, 1, 1, &in);
    CHECK(s);
    crun_tensor t;
    CHECK_OK(crun_session_get_output(s, 1, &t));
    const int64_t *idx = t.data;
    bool ok = t.dtype == CRUN_DTYPE_INT64 && idx[0] == 1 && idx[1] == 6;
    crun_session_free(s);
    crun_model_free(m);
    CHECK(ok);
}

TEST(global_average_pool)
{
    int64_t dx[4] = {1, 2, 2, 3};
    float x[12] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6}, y[2];
    OnnxBuilder *b = unary_model(13, "GlobalAveragePool", 4, dx);
    TIn in = {F32, 4, {1, 2, 2, 3}, x};
    crun_tensor t;
    long n = run_f32(b, &in, 1, y, 2, &t);
    ob_free(b);
    CHECK(n == 2 && t.rank == 4 && t.dims[2] == 1 && t.dims[3] == 1);
    CHECK_NEAR(y[0], 3.5, 1e-6);
    CHECK_NEAR(y[1], -3.5, 1e-6);
}

TEST(batchnorm_inference)
{
    int64_t dx[4] = {1, 2, 1, 2}, dc[1] = {2};
    float x[4] = {1, 2, 3, 4}, scale[2] = {2, 1}, bias[2] = {0, 1}, mean[2] = {1, 3}, var[2] = {4, 0.25f}, y[4];
    OnnxBuilder *b = ob_new(15);
    ob_input(b, "x", F32, 4, dx, NULL);
    ob_init_f32(b, "s", 1, dc, scale);
    ob_init_f32(b, "b", 1, dc, bias);
    ob_init_f32(b, "m", 1, dc, mean);
    ob_init_f32(b, "v", 1, dc, var);
    ob_attr_float(b, ob_node(b, "BatchNormalization", "x,s,b,m,v", "y"), "epsilon", 0);
    ob_output(b, "y");
    TIn in = {F32, 4, {1, 2, 1, 2}, x};
    long n = run_f32(b, &in, 1, y, 4, NULL);
    ob_free(b);
    float want[4] = {0, 1, 1, 3}; /* (1-1)/2*2, (2-1)/2*2, (3-3)/0.5+1, (4-3)/0.5+1 */
    CHECK(n == 4);
    CHECK_FLOATS(y, want, 4, 1e-6, 1e-7);
}

TEST(softmax_axis_semantics_changed_in_opset_13)
{
    int64_t dx[2] = {2, 2};
    float x[4] = {0, 1, 2, 3}, y[4];
    TIn in = {F32, 2, {2, 2}, x};
    /* opset 11, axis 0: the whole tensor is one row */
    OnnxBuilder *b = unary_model(11, "Softmax", 2, dx);
    ob_attr_int(b, ob_model(b)->graph->node[0], "axis", 0);
    long n = run_f32(b, &in, 1, y, 4, NULL);
    ob_free(b);
    double z = 1 + exp(1) + exp(2) + exp(3);
    CHECK(n == 4);
    CHECK_NEAR(y[3], exp(3) / z, 1e-6);
    /* opset 13, axis 0: columns */
    b = unary_model(13, "Softmax", 2, dx);
    ob_attr_int(b, ob_model(b)->graph->node[0], "axis", 0);
    n = run_f32(b, &in, 1, y, 4, NULL);
    ob_free(b);
    CHECK(n == 4);
    CHECK_NEAR(y[0], 1 / (1 + exp(2)), 1e-6);
    CHECK_NEAR(y[3], exp(2) / (1 + exp(2)), 1e-6);
}

/* ---- shape ops ---- */

static long shape_of_output(OnnxBuilder *b, const TIn *in, int n_in, crun_tensor *t, float *y, long max)
{
    return run_f32(b, in, n_in, y, max, t);
}

TEST(reshape_flatten_squeeze_unsqueeze)
{
    int64_t dx[3] = {2, 3, 4};
    float x[24], y[24];
    fill_random(x, 24, 5, 0, 1);
    TIn in = {F32, 3, {2, 3, 4}, x};
    crun_tensor t;
    /* Reshape with 0 (copy) and -1 (infer) */
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 3, dx, NULL);
    int64_t shp[3] = {0, -1, 2}, ds[1] = {3};
    ob_init_i64(b, "s", 1, ds, shp);
    ob_node(b, "Reshape", "x,s", "y");
    ob_output(b, "y");
    CHECK(shape_of_output(b, &in, 1, &t, y, 24) == 24 && t.rank == 3 && t.dims[0] == 2 && t.dims[1] == 6 &&
          t.dims[2] == 2);
    ob_free(b);
    CHECK_FLOATS(y, x, 24, 0, 0);
    /* Flatten axis 2 and axis -1 */
    int64_t axes_want[][2] = {{6, 4}, {6, 4}, {1, 24}};
    int64_t axes[] = {2, -1, 0};
    for (int i = 0; i < 3; i++) {
        b = unary_model(13, "Flatten", 3, dx);
        ob_attr_int(b, ob_model(b)->graph->node[0], "axis", axes[i]);
        CHECK(shape_of_output(b, &in, 1, &t, y, 24) == 24);
        ob_free(b);
        CHECK_MSG(t.rank == 2 && t.dims[0] == axes_want[i][0] && t.dims[1] == axes_want[i][1], "axis %lld",
                  (long long)axes[i]);
    }
    /* Unsqueeze opset 11 (attribute) and 13 (input), negative axes */
    int64_t ua[2] = {0, -1}, dua[1] = {2};
    b = unary_model(11, "Unsqueeze", 3, dx);
    ob_attr_ints(b, ob_model(b)->graph->node[0], "axes", ua, 2);
    CHECK(shape_of_output(b, &in, 1, &t, y, 24) == 24 && t.rank == 5 && t.dims[0] == 1 && t.dims[4] == 1);
    ob_free(b);
    b = ob_new(13);
    ob_input(b, "x", F32, 3, dx, NULL);
    ob_init_i64(b, "a", 1, dua, ua);
    ob_node(b, "Unsqueeze", "x,a", "u");
    ob_node(b, "Squeeze", "u", "y"); /* no axes: every unit dim goes */
    ob_output(b, "y");
    CHECK(shape_of_output(b, &in, 1, &t, y, 24) == 24 && t.rank == 3 && t.dims[2] == 4);
    ob_free(b);
    CHECK_FLOATS(y, x, 24, 0, 0);
}

TEST(squeeze_rejects_non_unit_axis)
{
    int64_t dx[2] = {2, 3}, da[1] = {1}, a[1] = {1};
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 2, dx, NULL);
    ob_init_i64(b, "a", 1, da, a);
    ob_node(b, "Squeeze", "x,a", "y");
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK(m);
    crun_session *s = NULL;
    CHECK_STATUS(crun_session_create(m, NULL, &s), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "cannot squeeze axis 1"));
    crun_model_free(m);
}

TEST(concat_transpose_shape)
{
    int64_t da[2] = {2, 2}, db[2] = {2, 1};
    float a[4] = {1, 2, 3, 4}, bv[2] = {5, 6}, y[6];
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "a", F32, 2, da, NULL);
    ob_input(b, "b", F32, 2, db, NULL);
    ob_attr_int(b, ob_node(b, "Concat", "a,b", "c"), "axis", -1);
    ob_node(b, "Transpose", "c", "y");
    ob_output(b, "y");
    TIn in[2] = {{F32, 2, {2, 2}, a}, {F32, 2, {2, 1}, bv}};
    crun_tensor t;
    long n = run_f32(b, in, 2, y, 6, &t);
    ob_free(b);
    float want[6] = {1, 3, 2, 4, 5, 6};
    CHECK(n == 6 && t.dims[0] == 3 && t.dims[1] == 2);
    CHECK_FLOATS(y, want, 6, 0, 0);

    /* Shape with start/end (opset 15) */
    int64_t dx[4] = {2, 3, 5, 7};
    b = ob_new(15);
    ob_input(b, "x", F32, 4, dx, NULL);
    Onnx__NodeProto *node = ob_node(b, "Shape", "x", "y");
    ob_attr_int(b, node, "start", 1);
    ob_attr_int(b, node, "end", -1);
    ob_output(b, "y");
    float x[210] = {0};
    TIn inx = {F32, 4, {2, 3, 5, 7}, x};
    int64_t shape[4];
    n = run_f32(b, &inx, 1, (float *)shape, 2, &t);
    ob_free(b);
    CHECK(n == 2 && t.dtype == CRUN_DTYPE_INT64 && shape[0] == 3 && shape[1] == 5);
}

TEST(transpose_4d_all_dtypes_sizes)
{
    int64_t dx[4] = {2, 3, 4, 5}, perm[4] = {3, 1, 0, 2};
    float x[120], y[120];
    for (int i = 0; i < 120; i++)
        x[i] = (float)i;
    OnnxBuilder *b = unary_model(13, "Transpose", 4, dx);
    ob_attr_ints(b, ob_model(b)->graph->node[0], "perm", perm, 4);
    TIn in = {F32, 4, {2, 3, 4, 5}, x};
    crun_tensor t;
    long n = run_f32(b, &in, 1, y, 120, &t);
    ob_free(b);
    CHECK(n == 120 && t.dims[0] == 5 && t.dims[1] == 3 && t.dims[2] == 2 && t.dims[3] == 4);
    for (int a = 0; a < 5; a++)
        for (int bb = 0; bb < 3; bb++)
            for (int c = 0; c < 2; c++)
                for (int d = 0; d < 4; d++)
                    CHECK_NEAR(y[((a * 3 + bb) * 2 + c) * 4 + d], x[((c * 3 + bb) * 4 + d) * 5 + a], 0);
}

TEST(slice_steps_negative_and_clamped)
{
    int64_t dx[2] = {3, 5};
    float x[15], y[15];
    for (int i = 0; i < 15; i++)
        x[i] = (float)i;
    /* rows 0..huge (clamped), columns from the end backwards with step -2 */
    int64_t starts[2] = {0, -1}, ends[2] = {INT64_MAX, INT64_MIN}, axes[2] = {0, 1}, steps[2] = {1, -2}, d2[1] = {2};
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 2, dx, NULL);
    ob_init_i64(b, "s", 1, d2, starts);
    ob_init_i64(b, "e", 1, d2, ends);
    ob_init_i64(b, "a", 1, d2, axes);
    ob_init_i64(b, "t", 1, d2, steps);
    ob_node(b, "Slice", "x,s,e,a,t", "y");
    ob_output(b, "y");
    TIn in = {F32, 2, {3, 5}, x};
    crun_tensor t;
    long n = run_f32(b, &in, 1, y, 15, &t);
    ob_free(b);
    float want[9] = {4, 2, 0, 9, 7, 5, 14, 12, 10};
    CHECK(n == 9 && t.dims[0] == 3 && t.dims[1] == 3);
    CHECK_FLOATS(y, want, 9, 0, 0);
    /* opset 9 attributes: axis 1, [1, 3) */
    int64_t s9[1] = {1}, e9[1] = {3}, a9[1] = {1};
    b = unary_model(9, "Slice", 2, dx);
    Onnx__NodeProto *node = ob_model(b)->graph->node[0];
    ob_attr_ints(b, node, "starts", s9, 1);
    ob_attr_ints(b, node, "ends", e9, 1);
    ob_attr_ints(b, node, "axes", a9, 1);
    n = run_f32(b, &in, 1, y, 15, &t);
    ob_free(b);
    float want9[6] = {1, 2, 6, 7, 11, 12};
    CHECK(n == 6);
    CHECK_FLOATS(y, want9, 6, 0, 0);
}

TEST(gather_negative_indices_and_out_of_range)
{
    int64_t dx[2] = {2, 3}, di[2] = {2, 2};
    float x[6] = {1, 2, 3, 4, 5, 6}, y[8];
    int64_t idx[4] = {0, -1, 1, 1};
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 2, dx, NULL);
    ob_input(b, "i", I64, 2, di, NULL);
    ob_attr_int(b, ob_node(b, "Gather", "x,i", "y"), "axis", 1);
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK(m);
    TIn in[2] = {{F32, 2, {2, 3}, x}, {I64, 2, {2, 2}, idx}};
    crun_session *s = run_inputs(m, 1, 2, in);
    CHECK(s);
    crun_tensor t;
    CHECK_OK(crun_session_get_output(s, 0, &t));
    memcpy(y, t.data, 8 * sizeof *y);
    float want[8] = {1, 3, 2, 2, 4, 6, 5, 5};
    bool shape_ok = t.rank == 3 && t.dims[0] == 2 && t.dims[1] == 2 && t.dims[2] == 2;
    /* An index out of range is an error while running, naming the node. */
    idx[2] = 3;
    CHECK_OK(crun_session_set_input(s, 1, I64, 2, di, idx));
    crun_status st = crun_session_run(s);
    crun_session_free(s);
    crun_model_free(m);
    CHECK(shape_ok);
    CHECK_FLOATS(y, want, 8, 0, 0);
    CHECK(st == CRUN_ERR_RUNTIME && strstr(crun_last_error(), "index 3 is out of range"));
}

TEST(cast_conversions)
{
    int64_t d[1] = {6};
    float x[6] = {1.9f, -1.9f, NAN, 3e10f, 0.1f, 65504};
    OnnxBuilder *b = unary_model(13, "Cast", 1, d);
    ob_attr_int(b, ob_model(b)->graph->node[0], "to", CRUN_DTYPE_INT32);
    TIn in = {F32, 1, {6}, x};
    int32_t yi[6];
    crun_tensor t;
    long n = run_f32(b, &in, 1, (float *)yi, 6, &t);
    ob_free(b);
    CHECK(n == 6 && t.dtype == I32);
    CHECK(yi[0] == 1 && yi[1] == -1 && yi[2] == 0 && yi[4] == 0);
    /* to float16 and back: exactly representable values survive */
    b = ob_new(13);
    ob_input(b, "x", F32, 1, d, NULL);
    ob_attr_int(b, ob_node(b, "Cast", "x", "h"), "to", CRUN_DTYPE_FLOAT16);
    ob_attr_int(b, ob_node(b, "Cast", "h", "y"), "to", CRUN_DTYPE_FLOAT);
    ob_output(b, "y");
    float y[6];
    n = run_f32(b, &in, 1, y, 6, NULL);
    ob_free(b);
    CHECK(n == 6);
    CHECK_NEAR(y[0], 1.900390625, 0);
    CHECK(isnan(y[2]) && isinf(y[3]));
    CHECK_NEAR(y[5], 65504, 0);
    /* to bool */
    b = unary_model(13, "Cast", 1, d);
    ob_attr_int(b, ob_model(b)->graph->node[0], "to", CRUN_DTYPE_BOOL);
    uint8_t yb[8];
    n = run_f32(b, &in, 1, (float *)yb, 6, &t);
    ob_free(b);
    CHECK(n == 6 && yb[0] == 1 && yb[4] == 1);
}

TEST(identity_and_dropout_pass_through)
{
    int64_t d[1] = {3};
    float x[3] = {1, 2, 3}, y[3];
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", F32, 1, d, NULL);
    ob_node(b, "Identity", "x", "i");
    ob_node(b, "Dropout", "i", "y,mask");
    ob_output(b, "y");
    ob_output(b, "mask");
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK(m);
    TIn in = {F32, 1, {3}, x};
    crun_session *s = run_inputs(m, 1, 1, &in);
    CHECK(s);
    crun_tensor t, mask;
    CHECK_OK(crun_session_get_output(s, 0, &t));
    CHECK_OK(crun_session_get_output(s, 1, &mask));
    memcpy(y, t.data, sizeof y);
    bool mask_ok = mask.dtype == CRUN_DTYPE_BOOL && ((const uint8_t *)mask.data)[2] == 1;
    crun_session_free(s);
    crun_model_free(m);
    CHECK_FLOATS(y, x, 3, 0, 0);
    CHECK(mask_ok);
}

/* Elementwise ops split their work into tiles of 16K elements: sizes at, just under and
 * just over a tile (and several tiles, with broadcasting) must all be computed in full. */
TEST(elementwise_tiles_at_every_boundary)
{
    long sizes[] = {1, 16383, 16384, 16385, 32768, 65536 + 7, 3 * 16384};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        long n = sizes[s];
        for (int threads = 1; threads <= 3; threads += 2) {
            int64_t d[1] = {n}, d2[2] = {2, n};
            float *x = malloc((size_t)n * 2 * sizeof *x), *y = malloc((size_t)n * 2 * sizeof *y);
            fill_random(x, n * 2, (unsigned)n, -1, 1);
            OnnxBuilder *b = ob_new(13);
            ob_input(b, "x", F32, 2, d2, NULL);
            ob_input(b, "r", F32, 1, d, NULL);
            ob_node(b, "Relu", "x", "a");
            ob_node(b, "Add", "a,r", "y"); /* [2,n] + [n]: the row broadcast */
            ob_output(b, "y");
            crun_model *m = ob_load(b);
            ob_free(b);
            TIn in[2] = {{F32, 2, {2, n}, x}, {F32, 1, {n}, x}};
            crun_session *sess = m ? run_inputs(m, threads, 2, in) : NULL;
            crun_tensor t;
            bool ok = sess && crun_session_get_output(sess, 0, &t) == CRUN_OK;
            long bad = -1;
            for (long i = 0; ok && i < 2 * n && bad < 0; i++) {
                float want = (x[i] > 0 ? x[i] : 0) + x[i % n];
                if (((const float *)t.data)[i] != want)
                    bad = i;
            }
            crun_session_free(sess);
            crun_model_free(m);
            free(x);
            free(y);
            CHECK_MSG(ok && bad < 0, "size %ld, %d threads: element %ld wrong", n, threads, bad);
        }
    }
}
