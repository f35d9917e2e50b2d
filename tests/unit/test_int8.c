/* test_int8.c - the packed 8-bit GEMM and the integer kernels built on it, bit for bit
 * against a brute-force formula and against the reference kernels, under every ISA this
 * CPU has, on shapes that hit every tile and block edge. */
#include <stdlib.h>
#include <string.h>

#include "ops/qgemm.h"
#include "quant/quant.h"
#include "runtime/threadpool.h"
#include "testutil.h"

static uint32_t rng_state = 12345;
static int32_t rnd(int32_t lo, int32_t hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (int32_t)((rng_state >> 8) % (uint32_t)(hi - lo + 1));
}

static void fill_bytes(uint8_t *p, int64_t n, bool is_signed)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (uint8_t)(is_signed ? rnd(-128, 127) : rnd(0, 255));
}

static int32_t byte_val(const uint8_t *p, int64_t i, bool is_signed) { return is_signed ? (int8_t)p[i] : p[i]; }

typedef struct QCase {
    int64_t M, N, K;
    bool w_signed, x_signed, zw_nonzero, nk; /* nk: B given as N x K (a MatMul's A) */
    QOutKind out;
} QCase;

/* acc[m][p] = sum (w - zw)(x - zx) + bias, then requantized; the definition. */
static void brute(const QCase *c, const uint8_t *w, const int32_t *zw, const uint8_t *x, int32_t zx,
                  const int32_t *bias, const float *mult, int32_t zy, QuantRange r, void *y)
{
    for (int64_t m = 0; m < c->M; m++)
        for (int64_t p = 0; p < c->N; p++) {
            uint32_t acc = (uint32_t)bias[m];
            for (int64_t k = 0; k < c->K; k++) {
                int32_t xv = byte_val(x, c->nk ? p * c->K + k : k * c->N + p, c->x_signed);
                acc += (uint32_t)((byte_val(w, m * c->K + k, c->w_signed) - zw[m]) * (xv - zx));
            }
            int64_t at = m * c->N + p;
            if (c->out == QOUT_I32)
                ((int32_t *)y)[at] = (int32_t)acc;
            else
                ((uint8_t *)y)[at] = (uint8_t)quant_requantize((int32_t)acc, mult[m], zy, r);
        }
}

/* Runs the packed GEMM with uk the way qlinear_packed.c does (canonical signedness, the
 * zero-point terms in row_add) and compares with brute(). */
static bool check_qgemm(const QGemmUkernel *uk, QCase c, ThreadPool *pool, char *why, size_t size)
{
    size_t esz = c.out == QOUT_I32 ? 4 : 1;
    uint8_t *w = malloc((size_t)(c.M * c.K + 1)), *x = malloc((size_t)(c.K * c.N + 1));
    int32_t *zw = malloc((size_t)c.M * 4), *bias = malloc((size_t)c.M * 4), *wsum = malloc((size_t)c.M * 4);
    int32_t *row_add = malloc((size_t)c.M * 4), *row_zw = malloc((size_t)c.M * 4);
    float *mult = malloc((size_t)c.M * 4);
    void *y = malloc((size_t)(c.M * c.N) * esz + 1), *want = malloc((size_t)(c.M * c.N) * esz + 1);
    fill_bytes(w, c.M * c.K, c.w_signed);
    fill_bytes(x, c.K * c.N, c.x_signed);
    int32_t zx = c.x_signed ? rnd(-128, 127) : rnd(0, 255), zy = c.out == QOUT_S8 ? rnd(-20, 20) : rnd(100, 140);
    for (int64_t m = 0; m < c.M; m++) {
        zw[m] = c.zw_nonzero ? (c.w_signed ? rnd(-128, 127) : rnd(0, 255)) : (c.w_signed ? 0 : 128);
        bias[m] = rnd(-100000, 100000);
        mult[m] = (float)rnd(1, 1000) * 1e-6f;
    }
    QuantRange r = c.out == QOUT_S8 ? QUANT_I8 : QUANT_U8;
    brute(&c, w, zw, x, zx, bias, mult, zy, r, want);

    int8_t *pa = mem_alloc_aligned(qgemm_packed_a_bytes(uk, c.M, c.K));
    qgemm_pack_a(uk, w, c.w_signed, c.M, c.K, c.K, 1, pa, wsum);
    bool flip = c.x_signed != uk->b_signed;
    int32_t zxc = flip ? (c.x_signed ? zx + 128 : zx - 128) : zx;
    bool any_zw = false;
    for (int64_t m = 0; m < c.M; m++) {
        int32_t z = zw[m] - (c.w_signed ? 0 : 128);
        row_add[m] = (int32_t)((uint32_t)bias[m] - (uint32_t)zxc * (uint32_t)wsum[m] +
                               (uint32_t)c.K * (uint32_t)zxc * (uint32_t)z);
        row_zw[m] = z;
        any_zw |= z != 0;
    }
    QGemmMatrix xm = {x, c.nk ? c.K : c.N};
    QGemmArgs g = {.M = c.M, .N = c.N, .K = c.K, .uk = uk, .a_packed = pa,
                   .pack_b = c.nk ? qgemm_pack_b_nk : qgemm_pack_b_kn, .b_src = &xm, .b_flip = flip ? 0x80 : 0,
                   .epi = {.row_add = row_add, .row_zw = any_zw ? row_zw : NULL, .mult = mult, .zy = zy, .lo = r.lo,
                           .hi = r.hi, .out = c.out},
                   .c = y, .rs = c.N, .cs = 1};
    void *ws = mem_alloc_aligned(qgemm_ws_bytes(&g, pool_threads(pool)));
    qgemm_run(&g, ws, pool);
    bool ok = memcmp(y, want, (size_t)(c.M * c.N) * esz) == 0;
    for (int64_t i = 0; !ok && i < c.M * c.N; i++) {
        int32_t got = esz == 4 ? ((int32_t *)y)[i] : ((uint8_t *)y)[i];
        int32_t exp = esz == 4 ? ((int32_t *)want)[i] : ((uint8_t *)want)[i];
        if (got != exp) {
            snprintf(why, size, "element (%lld, %lld) = %d, want %d", (long long)(i / c.N), (long long)(i % c.N), got,
                     exp);
            break;
        }
    }
    mem_free(ws);
    mem_free(pa);
    free(w), free(x), free(zw), free(bias), free(wsum), free(row_add), free(row_zw), free(mult), free(y), free(want);
    return ok;
}

TEST(qgemm_every_microkernel_every_edge)
{
    /* Tile edges of 4x8, 4x16, 8x32; K not a multiple of 4; N beyond one column block
     * (128 KiB / K columns) and beyond the 1024-column cap. */
    int64_t sizes[][3] = {{1, 1, 1},   {3, 5, 7},      {4, 8, 4},    {5, 9, 13},  {8, 32, 64}, {9, 33, 65},
                          {17, 47, 3}, {16, 1030, 10}, {7, 300, 600}, {33, 17, 2}, {2, 2000, 5}, {12, 64, 1153}};
    ThreadPool *pools[2] = {NULL, pool_create(3)};
    for (int u = 0; u < qgemm_ukernel_count(); u++) {
        const QGemmUkernel *uk = qgemm_ukernel_at(u);
        if (!isa_allowed(uk->isa)) {
            printf("  (%s: this CPU lacks %s, not run)\n", uk->name, isa_name(uk->isa));
            continue;
        }
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int flags = 0; flags < 16; flags++)
                for (int out = 0; out < 3; out++) {
                    QCase c = {sizes[s][0], sizes[s][1], sizes[s][2], flags & 1, flags & 2, flags & 4, flags & 8,
                               (QOutKind)out};
                    char why[160] = "";
                    bool ok = check_qgemm(uk, c, pools[(s + (size_t)flags) % 2], why, sizeof why);
                    if (!ok)
                        pool_free(pools[1]);
                    CHECK_MSG(ok, "%s M=%lld N=%lld K=%lld flags=%d out=%d: %s", uk->name, (long long)c.M,
                              (long long)c.N, (long long)c.K, flags, out, why);
                }
    }
    pool_free(pools[1]);
}

/* ---- whole ops: the packed kernels against the reference ones, bit for bit ---- */

/* Runs m with the reference kernels, then under every ISA this CPU has, comparing output
 * 0's bytes; the first step must run a kernel named after the ISA (or "packed" on the
 * scalar level), or, when kernel is not NULL, the kernel of that name (suffixed with the
 * float level of the ISA above scalar), so each path is known to run. */
static bool named(const char *got, const char *kernel, Isa isa)
{
    char want[80];
    Isa base = isa_base(isa);
    if (base == ISA_SCALAR)
        snprintf(want, sizeof want, "%s", kernel);
    else
        snprintf(want, sizeof want, "%s_%s", kernel, isa_name(base));
    return !strcmp(got, want);
}

static bool int_kernels_match_reference(crun_model *m, const TIn *in, int threads, const char *kernel, char *why,
                                        size_t size)
{
    void *ref = NULL;
    size_t n_ref = 0;
    bool ok = true;
    for (int isa = -1; isa < ISA_COUNT && ok; isa++) {
        if (!kernels_select(isa))
            continue;
        crun_session *s = run_inputs(m, threads, 1, in);
        crun_tensor t;
        crun_step_info st;
        ok = s && crun_session_get_output(s, 0, &t) == CRUN_OK && crun_session_step_info(s, 0, &st) == CRUN_OK;
        const QGemmUkernel *uk = isa >= 0 ? qgemm_ukernel_for_isa((Isa)isa) : NULL;
        if (!ok) {
            snprintf(why, size, "did not run: %s", crun_last_error());
        } else if (isa < 0) {
            n_ref = t.size_bytes;
            ref = malloc(n_ref + 1);
            memcpy(ref, t.data, n_ref);
        } else if ((kernel && !named(st.kernel, kernel, (Isa)isa)) ||
                   (!kernel && uk && !strstr(st.kernel, isa == ISA_SCALAR ? "packed" : isa_name((Isa)isa)))) {
            snprintf(why, size, "under %s the step ran %s", isa_name((Isa)isa), st.kernel);
            ok = false;
        } else if (t.size_bytes != n_ref || memcmp(t.data, ref, n_ref) != 0) {
            snprintf(why, size, "%s differs from the reference", st.kernel);
            ok = false;
        }
        crun_session_free(s);
    }
    kernels_select_done();
    free(ref);
    return ok;
}

static crun_dtype dt8(bool s) { return s ? CRUN_DTYPE_INT8 : CRUN_DTYPE_UINT8; }

/* A QLinearConv's shape: input C x H x W, M outputs, K x K kernel; dil 0 means 1; one
 * more row of padding at the bottom when pad_bottom. */
typedef struct QConvShape {
    int C, H, W, M, K, stride, pad, group, dil;
    bool pad_bottom;
} QConvShape;

/* A QLinearConv with per-channel weight scales and zero points, bias and the given types. */
static crun_model *qconv_model(const QConvShape *q, bool xs, bool ws, bool zw_nonzero, const int64_t *dx)
{
    int C = q->C, M = q->M, K = q->K, group = q->group, dil = q->dil ? q->dil : 1;
    int64_t dw[4] = {M, C / group, K, K}, dm[1] = {M}, st[2] = {q->stride, q->stride}, dl[2] = {dil, dil};
    int64_t pads[4] = {q->pad, q->pad, q->pad + q->pad_bottom, q->pad};
    int64_t nw = (int64_t)M * (C / group) * K * K;
    uint8_t *w = malloc((size_t)nw), zw[64];
    float sw[64];
    int32_t bias[64];
    fill_bytes(w, nw, ws);
    for (int m = 0; m < M; m++) {
        zw[m] = (uint8_t)(zw_nonzero ? rnd(-10, 10) + (ws ? 0 : 128) : (ws ? 0 : 128));
        sw[m] = 0.0005f * (float)(m % 7 + 1);
        bias[m] = rnd(-5000, 5000);
    }
    float sx = 0.02f, sy = 0.15f;
    uint8_t zx = (uint8_t)(xs ? -3 : 120), zy = (uint8_t)(xs ? 5 : 130);
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", dt8(xs), 4, dx, NULL);
    ob_initializer(b, ob_tensor(b, "sx", CRUN_DTYPE_FLOAT, 0, NULL, &sx));
    ob_initializer(b, ob_tensor(b, "zx", dt8(xs), 0, NULL, &zx));
    ob_initializer(b, ob_tensor(b, "w", dt8(ws), 4, dw, w));
    ob_initializer(b, ob_tensor(b, "sw", CRUN_DTYPE_FLOAT, 1, dm, sw));
    ob_initializer(b, ob_tensor(b, "zw", dt8(ws), 1, dm, zw));
    ob_initializer(b, ob_tensor(b, "sy", CRUN_DTYPE_FLOAT, 0, NULL, &sy));
    ob_initializer(b, ob_tensor(b, "zy", dt8(xs), 0, NULL, &zy));
    ob_initializer(b, ob_tensor(b, "bias", CRUN_DTYPE_INT32, 1, dm, bias));
    Onnx__NodeProto *n = ob_node(b, "QLinearConv", "x,sx,zx,w,sw,zw,sy,zy,bias", "y");
    ob_attr_ints(b, n, "strides", st, 2);
    ob_attr_ints(b, n, "pads", pads, 4);
    ob_attr_ints(b, n, "dilations", dl, 2);
    ob_attr_int(b, n, "group", group);
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    free(w);
    return m;
}

TEST(qlinear_conv_packed_matches_reference)
{
    QConvShape cases[] = {
        {3, 13, 11, 8, 3, 1, 1, 1, 0, 0}, {8, 6, 7, 24, 1, 1, 0, 1, 0, 0}, {12, 5, 5, 6, 3, 1, 0, 3, 0, 0},
        {5, 17, 3, 7, 3, 2, 0, 1, 0, 0}, {7, 20, 20, 9, 7, 3, 3, 1, 0, 0}, {16, 9, 9, 33, 3, 2, 1, 1, 0, 0},
        {64, 7, 7, 40, 3, 1, 1, 1, 0, 0}, {20, 30, 30, 5, 1, 1, 0, 1, 0, 0},
        /* several column blocks with runs across strips; dilation; uneven padding; 1x1 stride 2 */
        {16, 40, 41, 10, 3, 1, 1, 1, 0, 0}, {9, 15, 16, 12, 3, 1, 2, 1, 2, 0}, {6, 11, 10, 17, 3, 2, 1, 1, 0, 1},
        {10, 9, 9, 9, 1, 2, 0, 1, 0, 0},
        /* depthwise: 3x3 and 5x5, strides 1 and 2, with and without padding, odd widths */
        {8, 13, 11, 8, 3, 1, 1, 8, 0, 0}, {5, 9, 17, 5, 3, 2, 1, 5, 0, 0}, {6, 12, 7, 6, 5, 2, 2, 6, 0, 0},
        {3, 5, 5, 3, 3, 1, 0, 3, 0, 0}, {4, 20, 37, 4, 3, 2, 1, 4, 0, 1}, {6, 15, 18, 6, 3, 1, 2, 6, 2, 0},
        {9, 7, 7, 9, 3, 1, 1, 9, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int types = 0; types < 8; types++) {
            bool xs = types & 1, ws = types & 2, zw = types & 4;
            int64_t dx[4] = {2, cases[c].C, cases[c].H, cases[c].W};
            crun_model *m = qconv_model(&cases[c], xs, ws, zw, dx);
            CHECK_MSG(m, "case %zu: %s", c, crun_last_error());
            int64_t nx = dx[0] * dx[1] * dx[2] * dx[3];
            uint8_t *x = malloc((size_t)nx);
            fill_bytes(x, nx, xs);
            TIn in = {dt8(xs), 4, {dx[0], dx[1], dx[2], dx[3]}, x};
            char why[200];
            bool dw = cases[c].group == cases[c].C && cases[c].group == cases[c].M;
            bool ok = int_kernels_match_reference(m, &in, 1 + (int)(c % 2), dw ? "qlinear_conv_dw" : NULL, why,
                                                  sizeof why);
            free(x);
            crun_model_free(m);
            CHECK_MSG(ok, "case %zu types %d: %s", c, types, why);
        }
}

/* 8-bit MaxPool (the separable kernel) against the reference kernel, both types, padding
 * (windows that are all padding in ceil mode), strides, odd widths. */
TEST(maxpool_8bit_matches_reference)
{
    struct {
        int H, W, K, stride, pad, ceil;
    } cases[] = {{112, 112, 3, 2, 1, 0}, {7, 9, 2, 2, 0, 0}, {8, 17, 3, 1, 1, 0}, {5, 5, 3, 2, 0, 1},
                 {13, 13, 5, 2, 2, 1}, {1, 1, 1, 1, 0, 0}, {10, 15, 7, 2, 3, 0}, {9, 50, 3, 3, 1, 0},
                 {12, 21, 4, 4, 0, 1}, {6, 6, 3, 3, 1, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int sgn = 0; sgn < 2; sgn++) {
            int64_t dx[4] = {2, 3, cases[c].H, cases[c].W}, k[2] = {cases[c].K, cases[c].K};
            int64_t st[2] = {cases[c].stride, cases[c].stride}, p = cases[c].pad, pads[4] = {p, p, p, p};
            int64_t nx = dx[0] * dx[1] * dx[2] * dx[3];
            OnnxBuilder *b = ob_new(13);
            ob_input(b, "x", dt8(sgn), 4, dx, NULL);
            Onnx__NodeProto *n = ob_node(b, "MaxPool", "x", "y");
            ob_attr_ints(b, n, "kernel_shape", k, 2);
            ob_attr_ints(b, n, "strides", st, 2);
            ob_attr_ints(b, n, "pads", pads, 4);
            ob_attr_int(b, n, "ceil_mode", cases[c].ceil);
            ob_output(b, "y");
            crun_model *m = ob_load(b);
            ob_free(b);
            CHECK_MSG(m, "case %zu: %s", c, crun_last_error());
            uint8_t *x = malloc((size_t)nx), *ref = NULL;
            fill_bytes(x, nx, sgn);
            TIn in = {dt8(sgn), 4, {dx[0], dx[1], dx[2], dx[3]}, x};
            bool ok = true;
            for (int isa = -1; isa <= ISA_SCALAR && ok; isa++) { /* the reference, then maxpool_u8 */
                CHECK(kernels_select(isa));
                crun_session *s = run_inputs(m, 1 + (int)(c % 2), 1, &in);
                crun_tensor t;
                crun_step_info si;
                ok = s && crun_session_get_output(s, 0, &t) == CRUN_OK && crun_session_step_info(s, 0, &si) == CRUN_OK;
                if (ok && isa < 0) {
                    ref = malloc(t.size_bytes);
                    memcpy(ref, t.data, t.size_bytes);
                } else if (ok) {
                    CHECK_MSG(!strcmp(si.kernel, "maxpool_u8"), "case %zu ran %s", c, si.kernel);
                    ok = memcmp(ref, t.data, t.size_bytes) == 0;
                }
                crun_session_free(s);
            }
            kernels_select_done();
            free(x);
            free(ref);
            crun_model_free(m);
            CHECK_MSG(ok, "case %zu signed %d: maxpool_u8 differs from the reference", c, sgn);
        }
}

TEST(qlinear_matmul_packed_matches_reference)
{
    int64_t shapes[][3] = {{1, 1, 1}, {5, 7, 9}, {3, 64, 33}, {2, 40, 300}, {130, 17, 64}}; /* T, N, K */
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int types = 0; types < 8; types++) {
            bool as = types & 1, bs = types & 2, zb_nonzero = types & 4;
            int64_t T = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
            int64_t da[3] = {2, T, K}, db[2] = {K, N}, dn[1] = {N};
            uint8_t *a = malloc((size_t)(2 * T * K)), *bw = malloc((size_t)(K * N)), zb[64];
            float sb[64];
            fill_bytes(a, 2 * T * K, as);
            fill_bytes(bw, K * N, bs);
            for (int64_t j = 0; j < N; j++) {
                zb[j] = (uint8_t)((zb_nonzero ? rnd(-9, 9) : 0) + (bs ? 0 : 128));
                sb[j] = 0.001f * (float)(j % 5 + 1);
            }
            float sa = 0.03f, sy = 0.2f;
            uint8_t za = (uint8_t)(as ? 7 : 110), zy = (uint8_t)(as ? -2 : 125);
            OnnxBuilder *b = ob_new(13);
            ob_input(b, "a", dt8(as), 3, da, NULL);
            ob_initializer(b, ob_tensor(b, "sa", CRUN_DTYPE_FLOAT, 0, NULL, &sa));
            ob_initializer(b, ob_tensor(b, "za", dt8(as), 0, NULL, &za));
            ob_initializer(b, ob_tensor(b, "b", dt8(bs), 2, db, bw));
            ob_initializer(b, ob_tensor(b, "sb", CRUN_DTYPE_FLOAT, 1, dn, sb));
            ob_initializer(b, ob_tensor(b, "zb", dt8(bs), 1, dn, zb));
            ob_initializer(b, ob_tensor(b, "sy", CRUN_DTYPE_FLOAT, 0, NULL, &sy));
            ob_initializer(b, ob_tensor(b, "zy", dt8(as), 0, NULL, &zy));
            ob_node(b, "QLinearMatMul", "a,sa,za,b,sb,zb,sy,zy", "y");
            ob_output(b, "y");
            crun_model *m = ob_load(b);
            ob_free(b);
            CHECK_MSG(m, "case %zu: %s", c, crun_last_error());
            TIn in = {dt8(as), 3, {2, T, K}, a};
            char why[200];
            bool ok = int_kernels_match_reference(m, &in, 1 + (int)(c % 2), NULL, why, sizeof why);
            free(a);
            free(bw);
            crun_model_free(m);
            CHECK_MSG(ok, "case %zu types %d: %s", c, types, why);
        }
}

/* ---- the QDQ pass: DequantizeLinear -> op -> QuantizeLinear runs as one integer op ---- */

/* x (float) -> Q -> DQ -> Conv (weights int8 per channel under DQ, or the same values as
 * float constants when float_weights) -> Relu -> Q -> DQ -> MaxPool 2x2 -> [Q -> DQ] ->
 * Add with a 1x1 Conv branch -> Q -> DQ -> Flatten -> Gemm (transB) -> Q -> DQ. */
typedef struct QdqNet {
    int8_t w1[16 * 8 * 9], w2[16 * 16], w3[10 * 400];
    float s1[16], s2[16], s3[10];
    int32_t b1[16], b3[10];
} QdqNet;

static void qdq_weights(OnnxBuilder *b, const char *name, int rank, const int64_t *dims, const int8_t *w,
                        const float *scales, int64_t n_scales, int axis, bool float_weights)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    int64_t per = n / n_scales;
    if (float_weights) {
        float *f = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) /* the channel is dim 0 (axis 0) or the last dim (axis 1) */
            f[i] = (float)w[i] * scales[axis == 0 ? i / per : i % n_scales];
        ob_init_f32(b, name, rank, dims, f);
        free(f);
        return;
    }
    char qn[32], sn[32], zn[32];
    snprintf(qn, sizeof qn, "%s_q", name);
    snprintf(sn, sizeof sn, "%s_s", name);
    snprintf(zn, sizeof zn, "%s_z", name);
    int8_t zeros[16] = {0};
    int64_t ds[1] = {n_scales};
    ob_initializer(b, ob_tensor(b, qn, CRUN_DTYPE_INT8, rank, dims, w));
    ob_initializer(b, ob_tensor(b, sn, CRUN_DTYPE_FLOAT, 1, ds, scales));
    ob_initializer(b, ob_tensor(b, zn, CRUN_DTYPE_INT8, 1, ds, zeros));
    char ins[100];
    snprintf(ins, sizeof ins, "%s,%s,%s", qn, sn, zn);
    Onnx__NodeProto *dq = ob_node(b, "DequantizeLinear", ins, name);
    ob_attr_int(b, dq, "axis", axis);
}

/* A Q -> DQ pair on value `in`, named out, with scale s and zero point z (uint8). */
static void qdq_pair(OnnxBuilder *b, const char *in, const char *out, float s, uint8_t z)
{
    char sn[40], zn[40], qn[40], ins[120];
    snprintf(sn, sizeof sn, "%s_s", out);
    snprintf(zn, sizeof zn, "%s_z", out);
    snprintf(qn, sizeof qn, "%s_q", out);
    ob_initializer(b, ob_tensor(b, sn, CRUN_DTYPE_FLOAT, 0, NULL, &s));
    ob_initializer(b, ob_tensor(b, zn, CRUN_DTYPE_UINT8, 0, NULL, &z));
    snprintf(ins, sizeof ins, "%s,%s,%s", in, sn, zn);
    ob_node(b, "QuantizeLinear", ins, qn);
    snprintf(ins, sizeof ins, "%s,%s,%s", qn, sn, zn);
    ob_node(b, "DequantizeLinear", ins, out);
}

static crun_model *qdq_net(const QdqNet *q, bool float_weights)
{
    OnnxBuilder *b = ob_new(13);
    int64_t dx[4] = {1, 8, 10, 10}, dw1[4] = {16, 8, 3, 3}, dw2[4] = {16, 16, 1, 1}, dw3[2] = {10, 400};
    int64_t d16[1] = {16}, d10[1] = {10}, k2[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, NULL);
    qdq_pair(b, "x", "xd", 0.02f, 128);
    qdq_weights(b, "w1", 4, dw1, q->w1, q->s1, 16, 0, float_weights);
    qdq_weights(b, "w2", 4, dw2, q->w2, q->s2, 16, 0, float_weights);
    qdq_weights(b, "w3", 2, dw3, q->w3, q->s3, 10, 0, float_weights);
    float bf1[16], bf3[10];
    for (int i = 0; i < 16; i++)
        bf1[i] = (float)q->b1[i] * 0.02f * q->s1[i];
    for (int i = 0; i < 10; i++)
        bf3[i] = (float)q->b3[i] * 0.05f * q->s3[i];
    ob_init_f32(b, "b1", 1, d16, bf1); /* float biases: the pass quantizes them with sx * sw */
    ob_init_f32(b, "b3", 1, d10, bf3);
    Onnx__NodeProto *c1 = ob_node(b, "Conv", "xd,w1,b1", "c1");
    ob_attr_ints(b, c1, "pads", pads, 4);
    ob_node(b, "Relu", "c1", "r1");
    qdq_pair(b, "r1", "r1d", 0.05f, 0);
    Onnx__NodeProto *mp = ob_node(b, "MaxPool", "r1d", "p");
    ob_attr_ints(b, mp, "kernel_shape", k2, 2);
    ob_attr_ints(b, mp, "strides", k2, 2);
    qdq_pair(b, "p", "pd", 0.05f, 0);
    ob_node(b, "Conv", "pd,w2", "c2");
    qdq_pair(b, "c2", "c2d", 0.04f, 120);
    ob_node(b, "Add", "pd,c2d", "s");
    ob_node(b, "Relu", "s", "sr");
    qdq_pair(b, "sr", "sd", 0.05f, 0);
    ob_node(b, "Flatten", "sd", "f");
    qdq_pair(b, "f", "fd", 0.05f, 0);
    Onnx__NodeProto *gm = ob_node(b, "Gemm", "fd,w3,b3", "g");
    ob_attr_int(b, gm, "transB", 1);
    qdq_pair(b, "g", "y", 0.1f, 128);
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    return m;
}

TEST(qdq_patterns_run_as_integer_ops)
{
    QdqNet q;
    for (int i = 0; i < 16 * 8 * 9; i++)
        q.w1[i] = (int8_t)rnd(-127, 127);
    for (int i = 0; i < 16 * 16; i++)
        q.w2[i] = (int8_t)rnd(-127, 127);
    for (int i = 0; i < 10 * 400; i++)
        q.w3[i] = (int8_t)rnd(-127, 127);
    for (int i = 0; i < 16; i++) {
        q.s1[i] = 0.002f + 0.0003f * (float)i, q.s2[i] = 0.004f, q.b1[i] = rnd(-2000, 2000);
    }
    for (int i = 0; i < 10; i++)
        q.s3[i] = 0.001f * (float)(i + 1), q.b3[i] = rnd(-500, 500);
    crun_model *mq = qdq_net(&q, false), *mf = qdq_net(&q, true);
    CHECK_MSG(mq && mf, "%s", crun_last_error());
    float x[800];
    fill_random(x, 800, 5, -2, 2);
    TIn in = {CRUN_DTYPE_FLOAT, 4, {1, 8, 10, 10}, x};
    crun_session *sq = run_inputs(mq, 1, 1, &in), *sf = run_inputs(mf, 1, 1, &in);
    CHECK(sq && sf);
    /* The integer ops replaced the float chains (only the QDQ model's weights allow it). */
    const char *want[] = {"qlinear_conv", "maxpool", "qlinear_add", "qlinear_matmul"};
    for (size_t w = 0; w < 4; w++) {
        bool found = false;
        for (int i = 0; i < crun_session_step_count(sq); i++) {
            crun_step_info st;
            CHECK_OK(crun_session_step_info(sq, i, &st));
            found |= strncmp(st.kernel, want[w], strlen(want[w])) == 0;
        }
        for (int i = 0; !found && i < crun_session_step_count(sq); i++) {
            crun_step_info st;
            crun_session_step_info(sq, i, &st);
            printf("  step %d: %s %s\n", i, st.op_type, st.kernel);
        }
        CHECK_MSG(found, "no %s step in the QDQ model", want[w]);
    }
    crun_tensor tq, tf;
    CHECK_OK(crun_session_get_output(sq, 0, &tq));
    CHECK_OK(crun_session_get_output(sf, 0, &tf));
    /* Integer accumulation rounds once where the float conv rounds every sum: outputs may
     * differ by a step (0.1) at a rounding tie, and by a step more where a tie upstream
     * moved an input by one. */
    const float *yq = tq.data, *yf = tf.data;
    int exact = 0;
    for (int i = 0; i < 10; i++) {
        CHECK_MSG(fabsf(yq[i] - yf[i]) <= 0.2f + 1e-6f, "logit %d: %g (int8) vs %g (float chain)", i, yq[i], yf[i]);
        exact += yq[i] == yf[i];
    }
    CHECK_MSG(exact >= 7, "only %d of 10 logits equal", exact);
    crun_session_free(sq);
    crun_session_free(sf);
    crun_model_free(mq);
    crun_model_free(mf);
}
