/* test_quant.c - the quantization arithmetic (quant/quant.h) and the quantization ops:
 * QuantizeLinear / DequantizeLinear (per tensor and per axis), DynamicQuantizeLinear,
 * MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv.
 *
 * The integer products are checked against brute-force loops written here on odd shapes
 * (groups, strides, dilations, asymmetric pads, per-row/column/channel zero points, mixed
 * int8/uint8), with 1 and 3 threads; plus rounding ties, saturation and bad inputs. */
#include <stdlib.h>

#include "quant/calib.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "testutil.h"

#define F32 CRUN_DTYPE_FLOAT
#define U8 CRUN_DTYPE_UINT8
#define I8 CRUN_DTYPE_INT8
#define I32 CRUN_DTYPE_INT32

/* A small deterministic generator (the same values on every machine). */
static uint32_t rng_state = 12345;
static int32_t rnd(int32_t lo, int32_t hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (int32_t)((rng_state >> 8) % (uint32_t)(hi - lo + 1));
}

static void fill8(void *p, int64_t n, bool is_signed)
{
    for (int64_t i = 0; i < n; i++) {
        if (is_signed)
            ((int8_t *)p)[i] = (int8_t)rnd(-128, 127);
        else
            ((uint8_t *)p)[i] = (uint8_t)rnd(0, 255);
    }
}

/* One output into y. */
static crun_status run_model(OnnxBuilder *b, int threads, const TIn *in, int n_in, void *y, size_t max,
                             crun_tensor *shape)
{
    void *dst[1] = {y};
    return run_get(b, threads, in, n_in, 1, dst, max, shape);
}

/* ================= arithmetic ================= */

TEST(round_ties_to_even_and_saturates)
{
    const float v[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4999f, 1e30f, -1e30f, NAN, INFINITY};
    const int32_t u8[] = {0, 2, 2, 0, 0, 0, 2, 255, 0, 0, 255};
    const int32_t i8_zp3[] = {3, 5, 5, 3, 1, 1, 5, 127, -128, 3, 127};
    for (int i = 0; i < (int)(sizeof v / sizeof v[0]); i++) {
        CHECK_MSG(quant_round_sat(v[i], 0, QUANT_U8) == u8[i], "u8 %g -> %d", v[i], quant_round_sat(v[i], 0, QUANT_U8));
        CHECK_MSG(quant_round_sat(v[i], 3, QUANT_I8) == i8_zp3[i], "i8 %g -> %d", v[i],
                  quant_round_sat(v[i], 3, QUANT_I8));
    }
    CHECK(quant_quantize(1.0f, 0.0f, 7, QUANT_U8) == 7); /* zero scale: everything at zp */
    CHECK(quant_dequantize(10, 0.5f, 4) == 3.0f);
    CHECK(quant_requantize(-100, 0.25f, 10, QUANT_I8) == -15);
}

TEST(params_from_range_keep_zero_exact)
{
    float scale;
    int32_t zp;
    quant_params_from_range(-1.0f, 3.0f, QUANT_U8, &scale, &zp);
    CHECK(fabsf(scale - 4.0f / 255) < 1e-9f && zp == 64);
    CHECK(quant_quantize(0.0f, scale, zp, QUANT_U8) == zp);
    quant_params_from_range(2.0f, 5.0f, QUANT_U8, &scale, &zp); /* range widened to hold 0 */
    CHECK(fabsf(scale - 5.0f / 255) < 1e-9f && zp == 0);
    quant_params_from_range(-4.0f, -1.0f, QUANT_I8, &scale, &zp);
    CHECK(fabsf(scale - 4.0f / 255) < 1e-9f && zp == 127);
    quant_params_from_range(0.0f, 0.0f, QUANT_U8, &scale, &zp);
    CHECK(scale == 0.0f && zp == 0);
}

/* ================= QuantizeLinear / DequantizeLinear ================= */

/* x[2,3,5] -> QuantizeLinear(axis) -> DequantizeLinear(axis): scales per index of `axis`. */
static OnnxBuilder *qdq_model(int opset, int64_t axis, int n_scale, crun_dtype zt, const float *scale, const void *zp)
{
    int64_t dx[3] = {2, 3, 5}, ds[1] = {n_scale};
    OnnxBuilder *b = ob_new(opset);
    ob_input(b, "x", F32, 3, dx, NULL);
    ob_init_f32(b, "s", n_scale == 1 ? 0 : 1, ds, scale);
    ob_initializer(b, ob_tensor(b, "z", zt, n_scale == 1 ? 0 : 1, ds, zp));
    Onnx__NodeProto *q = ob_node(b, "QuantizeLinear", "x,s,z", "q");
    Onnx__NodeProto *d = ob_node(b, "DequantizeLinear", "q,s,z", "y");
    if (opset >= 13) {
        ob_attr_int(b, q, "axis", axis);
        ob_attr_int(b, d, "axis", axis);
    }
    ob_output(b, "q");
    ob_output(b, "y");
    return b;
}

TEST(quantize_per_axis_matches_formula)
{
    float x[30];
    for (int i = 0; i < 30; i++)
        x[i] = (float)(i - 13) * 0.37f;
    const float scale[3] = {0.1f, 0.25f, 0.05f};
    const int8_t zp[3] = {-3, 0, 10};
    for (int variant = 0; variant < 2; variant++) { /* axis 1, then axis -2 */
        OnnxBuilder *b = qdq_model(13, variant ? -2 : 1, 3, I8, scale, zp);
        TIn in = {F32, 3, {2, 3, 5}, x};
        crun_model *m = ob_load(b);
        CHECK(m);
        crun_session *s = run_inputs(m, 1, 1, &in);
        CHECK(s);
        crun_tensor q, y;
        CHECK_OK(crun_session_get_output(s, 0, &q));
        CHECK_OK(crun_session_get_output(s, 1, &y));
        CHECK(q.dtype == I8 && y.dtype == F32 && q.rank == 3);
        for (int i = 0; i < 30; i++) {
            int c = i / 5 % 3;
            double r = nearbyint((double)(x[i] / scale[c])) + zp[c];
            int32_t want = r < -128 ? -128 : r > 127 ? 127 : (int32_t)r;
            CHECK_MSG(((const int8_t *)q.data)[i] == want, "element %d: %d, want %d", i, ((const int8_t *)q.data)[i],
                      want);
            CHECK(((const float *)y.data)[i] == (float)(want - zp[c]) * scale[c]);
        }
        crun_session_free(s);
        crun_model_free(m);
        ob_free(b);
    }
}

TEST(quantize_defaults_to_uint8_and_saturates)
{
    int64_t dx[1] = {6};
    float x[6] = {-1.0f, 0.0f, 0.5f, 1.5f, 300.0f, NAN}, s = 1.0f;
    OnnxBuilder *b = ob_new(10);
    ob_input(b, "x", F32, 1, dx, NULL);
    ob_init_f32(b, "s", 0, NULL, &s);
    ob_node(b, "QuantizeLinear", "x,s", "y");
    ob_output(b, "y");
    uint8_t y[6];
    crun_tensor t;
    TIn in = {F32, 1, {6}, x};
    CHECK_OK(run_model(b, 1, &in, 1, y, sizeof y, &t));
    CHECK(t.dtype == U8);
    const uint8_t want[6] = {0, 0, 0, 2, 255, 0};
    CHECK(memcmp(y, want, 6) == 0);
    ob_free(b);
}

TEST(quantize_rejects_bad_parameters)
{
    const float scale[3] = {0.1f, 0.2f, 0.3f};
    const int8_t zp[3] = {0, 0, 0};
    float x[30] = {0};
    TIn in = {F32, 3, {2, 3, 5}, x};
    uint8_t y[30];
    /* per-axis scales did not exist before opset 13 */
    OnnxBuilder *b = qdq_model(10, 1, 3, I8, scale, zp);
    CHECK_STATUS(run_model(b, 1, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "opset 13"));
    ob_free(b);
    /* three scales on an axis of five */
    b = qdq_model(13, 2, 3, I8, scale, zp);
    CHECK_STATUS(run_model(b, 1, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "axis 2 has 5"));
    ob_free(b);
    /* int32 data with a zero point that is not 0 */
    int64_t d1[1] = {2};
    int32_t xi[2] = {1, 2}, zi = 5;
    float s = 1.0f;
    b = ob_new(13);
    ob_input(b, "x", I32, 1, d1, NULL);
    ob_init_f32(b, "s", 0, NULL, &s);
    ob_initializer(b, ob_tensor(b, "z", I32, 0, NULL, &zi));
    ob_node(b, "DequantizeLinear", "x,s,z", "y");
    ob_output(b, "y");
    TIn ini = {I32, 1, {2}, xi};
    CHECK_STATUS(run_model(b, 1, &ini, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "zero point of 0"));
    ob_free(b);
}

TEST(dynamic_quantize_edge_ranges)
{
    int64_t dx[1] = {4};
    const float cases[3][4] = {{0, 0, 0, 0}, {-4, -2, -1, -3}, {-1, 0, 1.5f, 3}};
    for (int c = 0; c < 3; c++) {
        OnnxBuilder *b = ob_new(11);
        ob_input(b, "x", F32, 1, dx, NULL);
        ob_node(b, "DynamicQuantizeLinear", "x", "y,s,z");
        ob_output(b, "y");
        ob_output(b, "s");
        ob_output(b, "z");
        crun_model *m = ob_load(b);
        CHECK(m);
        TIn in = {F32, 1, {4}, cases[c]};
        crun_session *s = run_inputs(m, 1, 1, &in);
        CHECK(s);
        crun_tensor y, sc, zp;
        CHECK_OK(crun_session_get_output(s, 0, &y));
        CHECK_OK(crun_session_get_output(s, 1, &sc));
        CHECK_OK(crun_session_get_output(s, 2, &zp));
        float scale;
        int32_t z;
        float lo = 0, hi = 0;
        for (int i = 0; i < 4; i++) {
            lo = fminf(lo, cases[c][i]);
            hi = fmaxf(hi, cases[c][i]);
        }
        quant_params_from_range(lo, hi, QUANT_U8, &scale, &z);
        CHECK(*(const float *)sc.data == scale && *(const uint8_t *)zp.data == z);
        for (int i = 0; i < 4; i++)
            CHECK(((const uint8_t *)y.data)[i] == quant_quantize(cases[c][i], scale, z, QUANT_U8));
        if (c == 1) /* all negative: the most negative value maps to 0, zero to 255 */
            CHECK(((const uint8_t *)y.data)[0] == 0 && z == 255);
        crun_session_free(s);
        crun_model_free(m);
        ob_free(b);
    }
}

/* ================= MatMulInteger / QLinearMatMul ================= */

TEST(matmul_integer_odd_shapes_and_zero_points)
{
    /* A [2,3,7] int8 with per-row zero points, B [7,5] uint8 with per-column ones. */
    enum { BA = 2, M = 3, K = 7, N = 5 };
    int8_t a[BA * M * K], za[M] = {-2, 0, 5};
    uint8_t bm[K * N], zb[N] = {0, 128, 3, 255, 17};
    fill8(a, BA * M * K, true);
    fill8(bm, K * N, false);
    int64_t da[3] = {BA, M, K}, db[2] = {K, N}, dza[1] = {M}, dzb[1] = {N};
    OnnxBuilder *b = ob_new(10);
    ob_input(b, "a", I8, 3, da, NULL);
    ob_initializer(b, ob_tensor(b, "b", U8, 2, db, bm));
    ob_initializer(b, ob_tensor(b, "za", I8, 1, dza, za));
    ob_initializer(b, ob_tensor(b, "zb", U8, 1, dzb, zb));
    ob_node(b, "MatMulInteger", "a,b,za,zb", "y");
    ob_output(b, "y");
    TIn in = {I8, 3, {BA, M, K}, a};
    for (int threads = 1; threads <= 3; threads += 2) {
        int32_t y[BA * M * N];
        crun_tensor t;
        CHECK_OK(run_model(b, threads, &in, 1, y, sizeof y, &t));
        CHECK(t.dtype == I32 && t.rank == 3 && t.dims[0] == BA && t.dims[1] == M && t.dims[2] == N);
        for (int bb = 0; bb < BA; bb++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    int32_t want = 0;
                    for (int k = 0; k < K; k++)
                        want += (a[(bb * M + i) * K + k] - za[i]) * (bm[k * N + j] - zb[j]);
                    CHECK_MSG(y[(bb * M + i) * N + j] == want, "[%d,%d,%d] = %d, want %d", bb, i, j,
                              y[(bb * M + i) * N + j], want);
                }
    }
    ob_free(b);
}

TEST(matmul_integer_wraps_instead_of_overflowing)
{
    /* 70000 products of 255 * 255 overflow int32: the result wraps (no undefined behaviour). */
    enum { K = 70000 };
    uint8_t *a = malloc(K), *bm = malloc(K);
    CHECK(a && bm);
    memset(a, 255, K);
    memset(bm, 255, K);
    int64_t da[2] = {1, K}, db[2] = {K, 1};
    OnnxBuilder *b = ob_new(10);
    ob_input(b, "a", U8, 2, da, NULL);
    ob_initializer(b, ob_tensor(b, "b", U8, 2, db, bm));
    ob_node(b, "MatMulInteger", "a,b", "y");
    ob_output(b, "y");
    TIn in = {U8, 2, {1, K}, a};
    int32_t y = 0;
    crun_status st = run_model(b, 1, &in, 1, &y, sizeof y, NULL);
    free(a);
    free(bm);
    ob_free(b);
    CHECK_OK(st);
    CHECK((uint32_t)y == (uint32_t)((uint64_t)K * 65025u));
}

TEST(qlinear_matmul_requantizes_per_column)
{
    enum { M = 4, K = 9, N = 3 };
    uint8_t a[M * K], bm[K * N], za = 7, zb[N] = {120, 128, 135};
    int8_t zy = -5;
    float sa = 0.02f, sb[N] = {0.01f, 0.03f, 0.002f}, sy = 0.05f;
    fill8(a, M * K, false);
    fill8(bm, K * N, false);
    int64_t da[2] = {M, K}, db[2] = {K, N}, dn[1] = {N};
    OnnxBuilder *b = ob_new(10);
    ob_input(b, "a", U8, 2, da, NULL);
    ob_init_f32(b, "sa", 0, NULL, &sa);
    ob_initializer(b, ob_tensor(b, "za", U8, 0, NULL, &za));
    ob_initializer(b, ob_tensor(b, "b", U8, 2, db, bm));
    ob_init_f32(b, "sb", 1, dn, sb);
    ob_initializer(b, ob_tensor(b, "zb", U8, 1, dn, zb));
    ob_init_f32(b, "sy", 0, NULL, &sy);
    ob_initializer(b, ob_tensor(b, "zy", I8, 0, NULL, &zy));
    ob_node(b, "QLinearMatMul", "a,sa,za,b,sb,zb,sy,zy", "y");
    ob_output(b, "y");
    TIn in = {U8, 2, {M, K}, a};
    int8_t y[M * N];
    crun_tensor t;
    CHECK_OK(run_model(b, 2, &in, 1, y, sizeof y, &t));
    CHECK(t.dtype == I8);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int32_t acc = 0;
            for (int k = 0; k < K; k++)
                acc += (a[i * K + k] - za) * (bm[k * N + j] - zb[j]);
            /* real value of the product over the output scale, rounded; allow one step for
             * float rounding of the multiplier */
            double r = nearbyint(acc * ((double)sa * sb[j] / sy)) + zy;
            int32_t want = r < -128 ? -128 : r > 127 ? 127 : (int32_t)r;
            CHECK_MSG(abs(y[i * N + j] - want) <= 1, "[%d,%d] = %d, want %d", i, j, y[i * N + j], want);
        }
    ob_free(b);
}

/* ================= ConvInteger / QLinearConv ================= */

typedef struct QConvCase {
    int64_t n, c, h, w, m, kh, kw, group;
    int64_t strides[2], dil[2], pads[4];
} QConvCase;

/* acc[n][m][oy][ox] by brute force; padding holds zx (contributes 0). */
static void conv_brute(const QConvCase *q, const uint8_t *x, int32_t zx, const int8_t *w, const int8_t *zw,
                       int64_t oh, int64_t ow, int32_t *acc)
{
    int64_t cg = q->c / q->group, mg = q->m / q->group;
    for (int64_t n = 0; n < q->n; n++)
        for (int64_t m = 0; m < q->m; m++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int32_t s = 0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t ky = 0; ky < q->kh; ky++)
                            for (int64_t kx = 0; kx < q->kw; kx++) {
                                int64_t iy = oy * q->strides[0] - q->pads[0] + ky * q->dil[0];
                                int64_t ix = ox * q->strides[1] - q->pads[1] + kx * q->dil[1];
                                if (iy < 0 || iy >= q->h || ix < 0 || ix >= q->w)
                                    continue;
                                int64_t ci = (m / mg) * cg + c;
                                s += (x[((n * q->c + ci) * q->h + iy) * q->w + ix] - zx) *
                                     (w[((m * cg + c) * q->kh + ky) * q->kw + kx] - zw[m]);
                            }
                    acc[((n * q->m + m) * oh + oy) * ow + ox] = s;
                }
}

static OnnxBuilder *qconv_model(const QConvCase *q, bool qlinear, const int8_t *w, const int8_t *zw, uint8_t zx,
                                const float *sw, const int32_t *bias)
{
    int64_t dx[4] = {q->n, q->c, q->h, q->w}, dw[4] = {q->m, q->c / q->group, q->kh, q->kw}, dm[1] = {q->m};
    float sx = 0.03f, sy = 0.2f;
    uint8_t zy = 100;
    OnnxBuilder *b = ob_new(10);
    ob_input(b, "x", U8, 4, dx, NULL);
    ob_initializer(b, ob_tensor(b, "w", I8, 4, dw, w));
    ob_initializer(b, ob_tensor(b, "zx", U8, 0, NULL, &zx));
    ob_initializer(b, ob_tensor(b, "zw", I8, 1, dm, zw));
    Onnx__NodeProto *nd;
    if (qlinear) {
        ob_init_f32(b, "sx", 0, NULL, &sx);
        ob_init_f32(b, "sw", 1, dm, sw);
        ob_init_f32(b, "sy", 0, NULL, &sy);
        ob_initializer(b, ob_tensor(b, "zy", U8, 0, NULL, &zy));
        ob_initializer(b, ob_tensor(b, "bias", I32, 1, dm, bias));
        nd = ob_node(b, "QLinearConv", "x,sx,zx,w,sw,zw,sy,zy,bias", "y");
    } else {
        nd = ob_node(b, "ConvInteger", "x,w,zx,zw", "y");
    }
    ob_attr_ints(b, nd, "strides", q->strides, 2);
    ob_attr_ints(b, nd, "dilations", q->dil, 2);
    ob_attr_ints(b, nd, "pads", q->pads, 4);
    ob_attr_int(b, nd, "group", q->group);
    ob_output(b, "y");
    return b;
}

TEST(conv_integer_and_qlinear_conv_match_brute_force)
{
    const QConvCase cases[] = {
        {2, 4, 7, 6, 6, 3, 3, 2, {2, 1}, {1, 2}, {1, 0, 2, 1}}, /* groups, stride, dilation, uneven pads */
        {1, 3, 5, 5, 2, 1, 1, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}}, /* pointwise */
        {1, 5, 9, 4, 5, 3, 2, 5, {1, 2}, {1, 1}, {1, 1, 1, 1}}, /* depthwise, non-square kernel */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const QConvCase *q = &cases[ci];
        int64_t nx = q->n * q->c * q->h * q->w, nw = q->m * (q->c / q->group) * q->kh * q->kw;
        int64_t oh = (q->h + q->pads[0] + q->pads[2] - (q->kh - 1) * q->dil[0] - 1) / q->strides[0] + 1;
        int64_t ow = (q->w + q->pads[1] + q->pads[3] - (q->kw - 1) * q->dil[1] - 1) / q->strides[1] + 1;
        int64_t ny = q->n * q->m * oh * ow;
        uint8_t *x = malloc((size_t)nx), *y8 = malloc((size_t)ny);
        int8_t *w = malloc((size_t)nw), zw[8];
        int32_t *want = malloc((size_t)ny * 4), *y = malloc((size_t)ny * 4), bias[8];
        float sw[8];
        CHECK(x && y8 && w && want && y);
        fill8(x, nx, false);
        fill8(w, nw, true);
        for (int m = 0; m < q->m; m++) {
            zw[m] = (int8_t)rnd(-20, 20);
            sw[m] = 0.001f * (float)(m + 1);
            bias[m] = rnd(-3000, 3000);
        }
        uint8_t zx = 131;
        conv_brute(q, x, zx, w, zw, oh, ow, want);
        TIn in = {U8, 4, {q->n, q->c, q->h, q->w}, x};
        OnnxBuilder *b = qconv_model(q, false, w, zw, zx, sw, bias);
        for (int threads = 1; threads <= 3; threads += 2) {
            crun_tensor t;
            CHECK_OK(run_model(b, threads, &in, 1, y, (size_t)ny * 4, &t));
            CHECK(t.dtype == I32 && t.dims[2] == oh && t.dims[3] == ow);
            CHECK_MSG(memcmp(y, want, (size_t)ny * 4) == 0, "case %zu: ConvInteger differs (threads %d)", ci,
                      threads);
        }
        ob_free(b);
        b = qconv_model(q, true, w, zw, zx, sw, bias);
        CHECK_OK(run_model(b, 2, &in, 1, y8, (size_t)ny, NULL));
        for (int64_t i = 0; i < ny; i++) {
            int64_t m = i / (oh * ow) % q->m;
            double r = nearbyint((want[i] + bias[m]) * (0.03 * sw[m] / 0.2)) + 100;
            int32_t exp = r < 0 ? 0 : r > 255 ? 255 : (int32_t)r;
            CHECK_MSG(abs(y8[i] - exp) <= 1, "case %zu: QLinearConv element %lld = %d, want %d", ci, (long long)i,
                      y8[i], exp);
        }
        ob_free(b);
        free(x);
        free(y8);
        free(w);
        free(want);
        free(y);
    }
}

TEST(qconv_rejects_mismatched_zero_points)
{
    QConvCase q = {1, 2, 4, 4, 3, 3, 3, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}};
    int8_t w[54] = {0}, zw[3] = {0};
    float sw[3] = {1, 1, 1};
    int32_t bias[3] = {0};
    OnnxBuilder *b = qconv_model(&q, false, w, zw, 0, sw, bias);
    /* replace the 3 per-channel zero points by 2 */
    Onnx__TensorProto *zt = ob_model(b)->graph->initializer[2]; /* w, zx, zw */
    zt->dims[0] = 2;
    zt->raw_data.len = 2;
    uint8_t x[32] = {0};
    int32_t y[12];
    TIn in = {U8, 4, {1, 2, 4, 4}, x};
    CHECK_STATUS(run_model(b, 1, &in, 1, y, sizeof y, NULL), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "zero point must have 1 or 3 values"));
    ob_free(b);
}

TEST(calibration_ranges_by_method)
{
    /* 10,000 values spread over [-1, 3] and one outlier at 100: minmax keeps the outlier,
     * percentile (99.9) and entropy clip it, and every range holds 0. */
    static float x[10001];
    for (int i = 0; i < 10000; i++)
        x[i] = -1.0f + 4.0f * (float)i / 10000.0f;
    x[10000] = 100.0f;
    CalibStats s;
    calib_init(&s);
    calib_observe_range(&s, x, 10001);
    calib_observe_hist(&s, x, 10001);
    float lo, hi;
    calib_range(&s, CALIB_MINMAX, 0, &lo, &hi);
    CHECK(lo == -1.0f && hi == 100.0f);
    calib_range(&s, CALIB_PERCENTILE, 99.9, &lo, &hi);
    CHECK_MSG(lo == -1.0f && hi > 2.9f && hi < 3.2f, "percentile range [%g, %g]", lo, hi);
    calib_range(&s, CALIB_ENTROPY, 0, &lo, &hi);
    CHECK_MSG(lo == -1.0f && hi > 2.5f && hi < 10.0f, "entropy range [%g, %g]", lo, hi);
    /* all positive: the range still starts at 0 */
    calib_init(&s);
    float pos[3] = {2, 3, 4};
    calib_observe_range(&s, pos, 3);
    calib_range(&s, CALIB_MINMAX, 0, &lo, &hi);
    CHECK(lo == 0.0f && hi == 4.0f);
}

/* The 4-bit block quantizer: codes in range, every weight within half a step of its
 * value (the step being the stored float16 scale), zero and constant blocks exact. */
TEST(block_quantizer_bounds_its_error)
{
    uint32_t seed = 7;
    for (int trial = 0; trial < 50; trial++) {
        int n = 1 + trial % 32, bits = trial % 3 == 0 ? 2 : trial % 3 == 1 ? 4 : 8;
        float w[32], mag = trial % 5 == 0 ? 1e-3f : trial % 5 == 1 ? 300.0f : 1.0f;
        for (int i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            w[i] = mag * ((float)(seed >> 8) / 8388608.0f - (trial % 4 == 0 ? 0.0f : 1.0f)); /* some all-positive */
        }
        uint16_t s16;
        uint8_t zp, codes[32];
        quant_block_nbits(w, n, bits, &s16, &zp, codes);
        float s = fp16_to_f32(s16);
        CHECK(s > 0 && zp <= (1 << bits) - 1);
        for (int i = 0; i < n; i++) {
            CHECK(codes[i] <= (1 << bits) - 1);
            float back = ((float)codes[i] - zp) * s;
            CHECK_MSG(fabsf(back - w[i]) <= 0.5f * s * 1.001f + 1e-7f, "trial %d: %g -> %g (step %g)", trial, w[i],
                      back, s);
        }
    }
    float zeros[8] = {0}, same[8] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f, 2.5f, 2.5f, 2.5f};
    uint16_t s16;
    uint8_t zp, codes[8];
    quant_block_nbits(zeros, 8, 4, &s16, &zp, codes);
    CHECK(((float)codes[3] - zp) * fp16_to_f32(s16) == 0.0f);
    quant_block_nbits(same, 8, 4, &s16, &zp, codes);
    CHECK_NEAR(((float)codes[5] - zp) * fp16_to_f32(s16), 2.5, 2.5 / 15 / 2 * 0.01 + 1e-3);
}
