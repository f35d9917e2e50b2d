/* test_kernels.c - optimised kernels against the reference ones, on odd shapes that hit
 * every remainder path (tile edges, K and N beyond one cache block, threads). */
#include <math.h>
#include <stdlib.h>

#include "ops/gemm.h"
#include "quant/fp16.h"
#include "runtime/threadpool.h"
#include "testutil.h"

typedef struct GemmCase {
    int64_t M, N, K;
    bool ta, tb, pack_a, pack_b;
} GemmCase;

static bool check_gemm(const GemmUkernel *uk, GemmCase c, ThreadPool *pool, char *why, size_t size)
{
    int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
    float *a = malloc((size_t)(c.M * c.K + 1) * 4), *b = malloc((size_t)(c.K * c.N + 1) * 4);
    float *y = malloc((size_t)(c.M * c.N + 1) * 4), *want = malloc((size_t)(c.M * c.N + 1) * 4);
    float *bias = malloc((size_t)(c.N + 1) * 4);
    fill_random(a, c.M * c.K, 1, -1, 1);
    fill_random(b, c.K * c.N, 2, -1, 1);
    fill_random(bias, c.N, 3, -1, 1);
    if (uk->narrow) {
        /* Half-precision kernels: small integers, whose products and k-block sums float16
         * holds exactly, so any misplaced or missing term shows (the rounding of real
         * data is test_gemm_f16_rounding's). */
        for (int64_t i = 0; i < c.M * c.K; i++)
            a[i] = roundf(a[i] * 2.4f);
        for (int64_t i = 0; i < c.K * c.N; i++)
            b[i] = roundf(b[i] * 2.4f);
    }
    GemmMatrix am = {a, lda, c.ta}, bm = {b, ldb, c.tb};
    gemm_naive(c.M, c.N, c.K, &am, &bm, want, c.N);
    for (int64_t i = 0; i < c.M * c.N; i++) /* epilogue: bias per column, then ReLU */
        want[i] = want[i] + bias[i % c.N] > 0 ? want[i] + bias[i % c.N] : 0;
    float *pa = c.pack_a ? mem_alloc_aligned(gemm_packed_a_bytes(uk, c.M, c.K)) : NULL;
    float *pb = c.pack_b ? mem_alloc_aligned(gemm_packed_b_bytes(uk, c.K, c.N)) : NULL;
    if (pa)
        gemm_pack_a(uk, &am, c.M, c.K, pa);
    if (pb)
        gemm_pack_b_full(uk, gemm_pack_b_matrix, &bm, c.K, c.N, pb);
    GemmArgs g = {.M = c.M, .N = c.N, .K = c.K, .uk = uk, .a_packed = pa, .a = am, .b_packed = pb,
                  .pack_b = gemm_pack_b_matrix, .b_src = &bm, .c = y, .ldc = c.N, .alpha = 1, .beta = 1,
                  .bias_kind = GEMM_BIAS_COL, .bias = bias, .act = {.kind = ACT_RELU}};
    void *ws = mem_alloc_aligned(gemm_ws_bytes(&g, pool_threads(pool)));
    gemm_run(&g, ws, pool);
    bool ok = floats_close(y, want, (long)(c.M * c.N), 1e-4, 1e-4, why, size);
    mem_free(ws);
    mem_free(pa);
    mem_free(pb);
    free(a);
    free(b);
    free(y);
    free(want);
    free(bias);
    return ok;
}

TEST(gemm_every_remainder_path)
{
    /* Edges of every tile size in use (4x8, 6x16, 14x32) and of the 256 cache blocks. */
    int64_t sizes[][3] = {{1, 1, 1},    {3, 5, 7},     {4, 8, 256},   {5, 9, 257},   {17, 33, 65},  {64, 256, 1},
                          {7, 300, 513}, {100, 17, 31}, {33, 513, 40}, {2, 1000, 3},  {6, 16, 8},    {14, 32, 9},
                          {13, 31, 255}, {15, 33, 2},   {28, 64, 300}, {29, 47, 17}};
    ThreadPool *pools[2] = {NULL, pool_create(3)};
    for (int k = 0; k < gemm_ukernel_count(); k++) {
        const GemmUkernel *uk = gemm_ukernel_at(k);
        if (!isa_allowed(uk->isa)) {
            printf("  (%s: this CPU lacks %s, not run)\n", uk->name, isa_name(uk->isa));
            continue;
        }
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int flags = 0; flags < 16; flags++) {
                GemmCase c = {sizes[s][0], sizes[s][1], sizes[s][2], flags & 1, flags & 2, flags & 4, flags & 8};
                for (int p = 0; p < 2; p++) {
                    char why[200];
                    bool ok = check_gemm(uk, c, pools[p], why, sizeof why);
                    if (!ok) {
                        pool_free(pools[1]);
                        CHECK_MSG(ok, "%s M=%lld N=%lld K=%lld flags=%d threads=%d: %s", uk->name, (long long)c.M,
                                  (long long)c.N, (long long)c.K, flags, pool_threads(pools[p]), why);
                    }
                }
            }
    }
    pool_free(pools[1]);
}

/* x rounded to the nearest half, ties to even (float16 arithmetic's rounding). */
static double round_half(double x)
{
    uint16_t h = f32_to_fp16((float)x); /* within one step of the answer (double rounding) */
    double best = fp16_to_f32(h);
    for (int d = -1; d <= 1; d += 2) {
        uint16_t n = (uint16_t)(h + d);
        if ((n & 0x7c00) == 0x7c00 || ((n ^ h) & 0x8000)) /* past inf, or across zero */
            continue;
        double v = fp16_to_f32(n), dv = fabs(v - x), db = fabs(best - x);
        if (dv < db || (dv == db && !(n & 1)))
            best = v;
    }
    return best;
}

/* What a half-precision microkernel must compute, step by step: each k block summed in
 * float16 by fused multiply-adds (one rounding each) from float16 operands, the blocks
 * added in float32. */
static float gemm_f16_emulated(const float *a, const float *b, int64_t i, int64_t j, int64_t N, int64_t K)
{
    float c = 0.0f;
    for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
        double acc = 0.0;
        for (int64_t k = k0; k < K && k < k0 + GEMM_KC; k++)
            acc = round_half(round_half(a[i * K + k]) * round_half(b[k * N + j]) + acc);
        c = k0 == 0 ? (float)acc : c + (float)acc;
    }
    return c;
}

TEST(gemm_f16_rounding_is_float16_arithmetic)
{
    /* Real-valued data: every output bit for bit what float16 multiply-adds give, across
     * k blocks, tile edges and both packings. */
    int64_t sizes[][3] = {{3, 5, 7}, {9, 17, 200}, {1, 33, 385}, {17, 16, 192}, {8, 31, 1}};
    bool any = false;
    for (int u = 0; u < gemm_ukernel_count(); u++) {
        const GemmUkernel *uk = gemm_ukernel_at(u);
        if (!uk->narrow || !isa_allowed(uk->isa))
            continue;
        any = true;
        for (size_t s = 0; s < CRUN_ARRAY_LEN(sizes); s++)
            for (int packed = 0; packed < 2; packed++) {
                int64_t M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                float *a = malloc((size_t)(M * K) * 4), *b = malloc((size_t)(K * N) * 4);
                float *y = malloc((size_t)(M * N) * 4);
                fill_random(a, M * K, 21, -1, 1);
                fill_random(b, K * N, 22, -1, 1);
                GemmMatrix am = {a, K, false}, bm = {b, N, false};
                float *pa = packed ? mem_alloc_aligned(gemm_packed_a_bytes(uk, M, K)) : NULL;
                float *pb = packed ? mem_alloc_aligned(gemm_packed_b_bytes(uk, K, N)) : NULL;
                if (packed) {
                    gemm_pack_a(uk, &am, M, K, pa);
                    gemm_pack_b_full(uk, gemm_pack_b_matrix, &bm, K, N, pb);
                }
                GemmArgs g = {.M = M, .N = N, .K = K, .uk = uk, .a_packed = pa, .a = am, .b_packed = pb,
                              .pack_b = gemm_pack_b_matrix, .b_src = &bm, .c = y, .ldc = N, .alpha = 1, .beta = 1};
                void *ws = mem_alloc_aligned(gemm_ws_bytes(&g, 1));
                gemm_run(&g, ws, NULL);
                long bad = 0;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        bad += y[i * N + j] != gemm_f16_emulated(a, b, i, j, N, K);
                mem_free(ws);
                mem_free(pa);
                mem_free(pb);
                free(a);
                free(b);
                free(y);
                CHECK_MSG(bad == 0, "%s M=%lld N=%lld K=%lld packed=%d: %ld outputs differ from float16 arithmetic",
                          uk->name, (long long)M, (long long)N, (long long)K, packed, bad);
            }
    }
    if (!any)
        printf("  (no half-precision microkernel runs on this CPU)\n");
}

/* Runs m on x with the reference kernels, then with the best kernels under every ISA this
 * CPU has (CRUN_ISA-style limits), and compares. The first step must run a kernel of the
 * ISA under test whenever want_simd is set, so each SIMD path is known to be exercised. */
static bool best_vs_reference_every_isa(crun_model *m, const TIn *in, int threads, bool want_simd, char *why,
                                        size_t size)
{
    float *ref = NULL;
    long n_ref = 0;
    double atol = 1e-5;
    bool ok = true;
    for (int isa = -1; isa < ISA_COUNT && ok; isa++) {
        if (!kernels_select(isa))
            continue;
        crun_session *s = run_inputs(m, threads, 1, in);
        crun_tensor t;
        crun_step_info st;
        ok = s && crun_session_get_output(s, 0, &t) == CRUN_OK && crun_session_step_info(s, 0, &st) == CRUN_OK;
        if (!ok) {
            snprintf(why, size, "did not run: %s", crun_last_error());
        } else if (isa < 0) {
            n_ref = (long)(t.size_bytes / 4);
            ref = malloc(t.size_bytes + 4);
            memcpy(ref, t.data, t.size_bytes);
            /* Rounding error grows with the magnitude of the sums, not of each output (a
             * small output can be the difference of large terms): scale atol with the
             * largest output. Winograd's transforms need this most. */
            float biggest = 0.0f; /* (a plain compare: gcc 12 for aarch64 fails to vectorise fmax here) */
            for (long i = 0; i < n_ref; i++)
                if (ref[i] > biggest || -ref[i] > biggest)
                    biggest = ref[i] > 0 ? ref[i] : -ref[i];
            atol = fmax(atol, 1e-5 * biggest);
        } else if (want_simd && isa != ISA_SCALAR && strcmp(st.isa, isa_name(isa_base((Isa)isa))) != 0) {
            snprintf(why, size, "under %s the step ran %s (%s)", isa_name((Isa)isa), st.kernel, st.isa);
            ok = false;
        } else if ((long)(t.size_bytes / 4) != n_ref) {
            snprintf(why, size, "%s: %ld elements, reference %ld", st.kernel, (long)(t.size_bytes / 4), n_ref);
            ok = false;
        } else {
            char sub[160];
            ok = floats_close(t.data, ref, n_ref, 1e-4, atol, sub, sizeof sub);
            if (!ok)
                snprintf(why, size, "%s: %s", st.kernel, sub);
        }
        crun_session_free(s);
    }
    kernels_select_done();
    free(ref);
    return ok;
}

/* A one-Conv (+ bias + fused activation) model against the reference, every ISA. */
static bool conv_best_vs_reference(int C, int H, int W, int M, int K, int stride, int pad, int group, int dil,
                                   int threads, const char *act, char *why, size_t size)
{
    int64_t dx[4] = {2, C, H, W}, dw[4] = {M, C / group, K, K}, db[1] = {M};
    int64_t st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad}, dils[2] = {dil, dil};
    long nx = 2L * C * H * W, nw = (long)M * (C / group) * K * K;
    float *x = malloc((size_t)nx * 4), *w = malloc((size_t)nw * 4), *bias = malloc((size_t)M * 4);
    fill_random(x, nx, 11, -1, 1);
    fill_random(w, nw, 12, -1, 1);
    fill_random(bias, M, 13, -1, 1);
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, NULL);
    ob_init_f32(b, "w", 4, dw, w);
    ob_init_f32(b, "b", 1, db, bias);
    Onnx__NodeProto *n = ob_node(b, "Conv", "x,w,b", "c");
    ob_attr_ints(b, n, "strides", st, 2);
    ob_attr_ints(b, n, "pads", pads, 4);
    ob_attr_int(b, n, "group", group);
    ob_attr_ints(b, n, "dilations", dils, 2);
    ob_node(b, act, "c", "y"); /* fused into the conv's epilogue */
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    TIn in = {CRUN_DTYPE_FLOAT, 4, {2, C, H, W}, x};
    /* Depthwise and Winograd-sized 3x3 convolutions have a kernel per ISA. */
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    bool depthwise = group > 1 && group == C && group == M && K <= 7;
    bool wino = K == 3 && stride == 1 && dil == 1 && group == 1 && C >= 8 && M >= 8 &&
                ((OH + 3) / 4) * ((OW + 3) / 4) >= 40;
    bool ok = m && best_vs_reference_every_isa(m, &in, threads, depthwise || wino, why, size);
    if (!m)
        snprintf(why, size, "did not load: %s", crun_last_error());
    free(x);
    free(w);
    free(bias);
    crun_model_free(m);
    return ok;
}

TEST(conv_kernels_match_reference)
{
    struct {
        int C, H, W, M, K, stride, pad, group, dil;
    } cases[] = {
        {3, 13, 11, 8, 3, 1, 1, 1, 1},   {16, 9, 9, 16, 3, 2, 1, 16, 1}, {32, 7, 5, 32, 5, 1, 2, 32, 1},
        {8, 6, 7, 24, 1, 1, 0, 1, 1},    {12, 5, 5, 6, 3, 1, 0, 3, 1},   {5, 17, 3, 7, 3, 2, 0, 1, 1},
        {24, 8, 8, 24, 3, 2, 1, 24, 1},  {1, 1, 1, 1, 1, 1, 0, 1, 1},    {7, 20, 20, 9, 7, 3, 3, 1, 1},
        /* depthwise: widths around every vector length (4, 8, 16), 5x5 stride 2, 7x7, no pad */
        {3, 5, 33, 3, 3, 1, 1, 3, 1},    {4, 6, 17, 4, 5, 2, 2, 4, 1},   {5, 3, 16, 5, 3, 2, 0, 5, 1},
        {2, 9, 31, 2, 7, 1, 3, 2, 1},    {3, 1, 1, 3, 3, 1, 1, 3, 1},    {6, 12, 8, 6, 3, 1, 0, 6, 1},
        {2, 11, 40, 2, 5, 1, 1, 2, 1},   {1, 4, 4, 1, 3, 2, 1, 1, 1},    {3, 7, 75, 3, 3, 2, 1, 3, 1},
        {2, 6, 66, 2, 5, 2, 2, 2, 1},    {4, 13, 40, 4, 3, 3, 1, 4, 1},  {3, 9, 21, 3, 5, 4, 2, 3, 1},
        /* Winograd F(4,3): tile grids with partial tiles at the right and bottom edges */
        {16, 26, 29, 12, 3, 1, 1, 1, 1}, {9, 30, 35, 17, 3, 1, 0, 1, 1}, {8, 33, 33, 40, 3, 1, 1, 1, 1},
        /* rows wide enough for the vector row copies and stores (16 tiles of 16 lanes) */
        {8, 21, 70, 16, 3, 1, 1, 1, 1},  {8, 14, 69, 9, 3, 1, 0, 1, 1},
        /* transforms and products over blocks of tile rows (4.7 MB of them for the image),
         * the last block shorter */
        {32, 62, 125, 32, 3, 1, 1, 1, 1},
        /* few pixels, many channels (conv_gemm_pixels): 3x3, 1x1, stride 2, padding past
         * the kernel, channel counts off every vector length */
        {64, 7, 7, 72, 3, 1, 1, 1, 1},   {40, 5, 6, 64, 1, 1, 0, 1, 1},  {33, 9, 7, 65, 3, 2, 1, 1, 1},
        {48, 3, 3, 50, 3, 1, 2, 1, 1},   {20, 11, 11, 257, 1, 1, 0, 1, 1},
        /* depthwise on channel blocks (narrow planes): whole blocks of 4, 8 and 16 lanes,
         * partial last blocks, several blocks, 7x7, dilations (plain and strided), and a
         * wide plane for the per-plane kernel */
        {16, 7, 7, 16, 3, 1, 1, 16, 1},  {20, 9, 10, 20, 5, 2, 2, 20, 1}, {40, 14, 14, 40, 3, 1, 1, 40, 1},
        {17, 3, 30, 17, 7, 1, 3, 17, 1}, {9, 12, 11, 9, 3, 1, 2, 9, 2}, {24, 13, 16, 24, 3, 2, 2, 24, 3},
        {3, 5, 140, 3, 3, 1, 1, 3, 1},   {5, 10, 12, 5, 5, 1, 4, 5, 2},
        /* strided planes in bands of output rows (the last band shorter), with dilation */
        {8, 150, 130, 8, 3, 2, 1, 8, 1}, {10, 61, 77, 10, 5, 2, 2, 10, 2},
    };
    const char *acts[] = {"Relu", "Sigmoid", "Identity"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int threads = 1; threads <= 2; threads++) {
            char why[240];
            const char *act = acts[(c + (size_t)threads) % 3];
            bool ok = conv_best_vs_reference(cases[c].C, cases[c].H, cases[c].W, cases[c].M, cases[c].K,
                                             cases[c].stride, cases[c].pad, cases[c].group,
                                             cases[c].dil, threads, act, why, sizeof why);
            CHECK_MSG(ok, "case %zu threads %d %s: %s", c, threads, act, why);
        }
}

/* MaxPool and AveragePool 2-D (SIMD window kernels) against the reference, every ISA;
 * average pooling with and without count_include_pad (ceil_mode windows end in padding). */
TEST(pool_kernels_match_reference)
{
    struct {
        int C, H, W, K, stride, pad, ceil;
    } cases[] = {
        {3, 112, 112, 3, 2, 1, 0}, {2, 7, 9, 2, 2, 0, 0}, {2, 8, 17, 3, 1, 1, 0}, {1, 5, 5, 3, 2, 0, 1},
        {4, 6, 33, 2, 1, 0, 0},    {2, 13, 13, 5, 2, 2, 1}, {1, 1, 1, 1, 1, 0, 0}, {3, 10, 15, 7, 2, 3, 0},
        {2, 9, 50, 3, 3, 1, 0},    {3, 12, 21, 4, 4, 0, 1},
        /* wide rows at stride 1 (per-plane max kernel); channel blocks whole and partial,
         * and strided planes in several bands */
        {2, 9, 50, 3, 1, 1, 0},    {3, 5, 70, 2, 1, 0, 1},  {16, 14, 14, 3, 2, 1, 1}, {20, 30, 41, 3, 2, 0, 0},
        {8, 200, 180, 3, 2, 1, 0},
    };
    for (int kind = 0; kind < 3; kind++) /* max, average, average counting pads */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t dx[4] = {2, cases[c].C, cases[c].H, cases[c].W}, k[2] = {cases[c].K, cases[c].K};
        int64_t st[2] = {cases[c].stride, cases[c].stride}, p = cases[c].pad, pads[4] = {p, p, p, p};
        long nx = 2L * cases[c].C * cases[c].H * cases[c].W;
        float *x = malloc((size_t)nx * 4);
        fill_random(x, nx, 21 + (unsigned)c, -1, 1);
        OnnxBuilder *b = ob_new(13);
        ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, NULL);
        Onnx__NodeProto *n = ob_node(b, kind ? "AveragePool" : "MaxPool", "x", "y");
        if (kind)
            ob_attr_int(b, n, "count_include_pad", kind == 2);
        ob_attr_ints(b, n, "kernel_shape", k, 2);
        ob_attr_ints(b, n, "strides", st, 2);
        ob_attr_ints(b, n, "pads", pads, 4);
        ob_attr_int(b, n, "ceil_mode", cases[c].ceil);
        ob_output(b, "y");
        crun_model *m = ob_load(b);
        ob_free(b);
        TIn in = {CRUN_DTYPE_FLOAT, 4, {dx[0], dx[1], dx[2], dx[3]}, x};
        char why[240] = "did not load";
        bool ok = m && best_vs_reference_every_isa(m, &in, 1 + (int)(c % 2), true, why, sizeof why);
        free(x);
        crun_model_free(m);
        CHECK_MSG(ok, "%s case %zu: %s", kind ? "AveragePool" : "MaxPool", c, why);
    }
}

/* The vector activation kernels (also the fused epilogues) against the scalar reference,
 * every ISA, on lengths around every vector width and values from -12 to 12 (sigmoid and
 * tanh saturate, erf switches formula at 0.9). */
TEST(activation_kernels_match_reference)
{
    const char *ops[] = {"Relu", "Sigmoid", "Tanh", "Erf", "HardSwish", "HardSigmoid", "LeakyRelu"};
    const int64_t lens[] = {1, 3, 4, 7, 8, 15, 16, 17, 33, 1000};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            int64_t n = lens[l], dx[2] = {1, n};
            float *x = malloc((size_t)n * 4);
            fill_random(x, n, 31 + (unsigned)l, -12, 12);
            if (n > 4) { /* exact points where formulas switch or saturate */
                x[0] = 0.0f;
                x[1] = 0.9f;
                x[2] = -0.9f;
                x[3] = 1e-3f;
            }
            bool bounded = strcmp(ops[o], "Sigmoid") == 0 || strcmp(ops[o], "Tanh") == 0 ||
                           strcmp(ops[o], "Erf") == 0 || strcmp(ops[o], "HardSigmoid") == 0;
            if (n > 8 && bounded) { /* outputs stay finite even for infinite inputs */
                x[4] = INFINITY;
                x[5] = -INFINITY;
                x[6] = 90.0f;
                x[7] = -90.0f;
            }
            OnnxBuilder *b = ob_new(13);
            ob_input(b, "x", CRUN_DTYPE_FLOAT, 2, dx, NULL);
            ob_node(b, ops[o], "x", "y");
            ob_output(b, "y");
            crun_model *m = ob_load(b);
            ob_free(b);
            TIn in = {CRUN_DTYPE_FLOAT, 2, {1, n}, x};
            char why[240] = "did not load";
            bool ok = m && best_vs_reference_every_isa(m, &in, 1, true, why, sizeof why);
            free(x);
            crun_model_free(m);
            CHECK_MSG(ok, "%s n=%lld: %s", ops[o], (long long)n, why);
        }
}

/* MatMul + bias + the exported GELU chain, and Conv + Mul(x, Sigmoid(x)): each fuses into
 * one step whose epilogue matches the reference, every ISA. */
TEST(gelu_and_silu_fuse_and_match_reference)
{
    for (int which = 0; which < 2; which++) {
        int64_t dx[4] = {1, 5, 9, 11}, dw[4] = {13, 5, 3, 3}, dm[2] = {11, 21}, db[1] = {21}, one[1] = {1};
        float w[13 * 5 * 9], bias[21], c_sqrt2 = 1.41421356f, c_one = 1.0f, c_half = 0.5f;
        fill_random(w, 13 * 5 * 9, 41, -1, 1);
        fill_random(bias, 21, 42, -1, 1);
        OnnxBuilder *b = ob_new(13);
        ob_input(b, "x", CRUN_DTYPE_FLOAT, which ? 4 : 2, which ? dx : (int64_t[]){9, 11}, NULL);
        if (which == 0) {
            ob_init_f32(b, "w", 2, dm, w);
            ob_init_f32(b, "b", 1, db, bias);
            ob_init_f32(b, "s2", 1, one, &c_sqrt2);
            ob_init_f32(b, "one", 1, one, &c_one);
            ob_init_f32(b, "half", 1, one, &c_half);
            ob_node(b, "MatMul", "x,w", "mm");
            ob_node(b, "Add", "b,mm", "h");
            ob_node(b, "Div", "h,s2", "d");
            ob_node(b, "Erf", "d", "e");
            ob_node(b, "Add", "e,one", "a");
            ob_node(b, "Mul", "h,a", "p");
            ob_node(b, "Mul", "p,half", "y");
        } else {
            ob_init_f32(b, "w", 4, dw, w);
            ob_node(b, "Conv", "x,w", "h");
            ob_node(b, "Sigmoid", "h", "s");
            ob_node(b, "Mul", "s,h", "y");
        }
        ob_output(b, "y");
        crun_model *m = ob_load(b);
        ob_free(b);
        CHECK(m);
        float x[5 * 9 * 11];
        fill_random(x, 5 * 9 * 11, 43, -3, 3);
        TIn in = which ? (TIn){CRUN_DTYPE_FLOAT, 4, {1, 5, 9, 11}, x} : (TIn){CRUN_DTYPE_FLOAT, 2, {9, 11}, x};
        crun_session *s = run_inputs(m, 1, 1, &in);
        crun_step_info st;
        bool fused = s && crun_session_step_count(s) == 1 && crun_session_step_info(s, 0, &st) == CRUN_OK &&
                     strstr(st.fused, which ? "Sigmoid+Mul" : "Gelu");
        crun_session_free(s);
        char why[240];
        bool ok = fused && best_vs_reference_every_isa(m, &in, 2, false, why, sizeof why);
        crun_model_free(m);
        CHECK_MSG(fused, "%s did not fuse into one step", which ? "SiLU" : "GELU");
        CHECK_MSG(ok, "%s: %s", which ? "SiLU" : "GELU", why);
    }
}

/* Softmax and LogSoftmax rows (the last axis) against the reference, every ISA, on row
 * lengths around every vector width and values far apart (exp's whole range). */
TEST(softmax_kernels_match_reference)
{
    const int64_t lens[] = {1, 3, 8, 15, 16, 17, 31, 33, 128, 1000};
    for (int log = 0; log < 2; log++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            int64_t n = lens[l], dx[2] = {5, n};
            float *x = malloc((size_t)(5 * n) * 4);
            fill_random(x, 5 * n, 51 + (unsigned)l, -30, 30);
            OnnxBuilder *b = ob_new(13);
            ob_input(b, "x", CRUN_DTYPE_FLOAT, 2, dx, NULL);
            ob_node(b, log ? "LogSoftmax" : "Softmax", "x", "y");
            ob_output(b, "y");
            crun_model *m = ob_load(b);
            ob_free(b);
            TIn in = {CRUN_DTYPE_FLOAT, 2, {5, n}, x};
            char why[240] = "did not load";
            bool ok = m && best_vs_reference_every_isa(m, &in, 1 + (int)(l % 2), true, why, sizeof why);
            free(x);
            crun_model_free(m);
            CHECK_MSG(ok, "%s n=%lld: %s", log ? "LogSoftmax" : "Softmax", (long long)n, why);
        }
}

/* LayerNormalization rows (last axis) against the reference, every ISA, on row lengths
 * around every vector width, with and without a bias. */
TEST(layernorm_kernels_match_reference)
{
    const int64_t lens[] = {1, 7, 16, 17, 33, 256, 1000};
    for (int with_bias = 0; with_bias < 2; with_bias++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            int64_t n = lens[l], dx[2] = {6, n}, dv[1] = {n};
            float *x = malloc((size_t)(6 * n) * 4), *sc = malloc((size_t)n * 4), *bi = malloc((size_t)n * 4);
            fill_random(x, 6 * n, 61 + (unsigned)l, -3, 5);
            fill_random(sc, n, 62, 0.5f, 2);
            fill_random(bi, n, 63, -1, 1);
            OnnxBuilder *b = ob_new(17);
            ob_input(b, "x", CRUN_DTYPE_FLOAT, 2, dx, NULL);
            ob_init_f32(b, "s", 1, dv, sc);
            ob_init_f32(b, "b", 1, dv, bi);
            ob_node(b, "LayerNormalization", with_bias ? "x,s,b" : "x,s", "y");
            ob_output(b, "y");
            crun_model *m = ob_load(b);
            ob_free(b);
            TIn in = {CRUN_DTYPE_FLOAT, 2, {6, n}, x};
            char why[240] = "did not load";
            bool ok = m && best_vs_reference_every_isa(m, &in, 1 + (int)(l % 2), true, why, sizeof why);
            free(x);
            free(sc);
            free(bi);
            crun_model_free(m);
            CHECK_MSG(ok, "n=%lld bias=%d: %s", (long long)n, with_bias, why);
        }
}

/* LayerNorm as exporters before opset 17 write it becomes one LayerNormalization step
 * that gives the values the nine ops would. */
TEST(decomposed_layernorm_fuses)
{
    int64_t dx[3] = {2, 5, 24}, dv[1] = {24}, one[1] = {1};
    float sc[24], bi[24], two = 2.0f, eps = 1e-5f, x[2 * 5 * 24];
    int64_t axes[1] = {-1};
    fill_random(sc, 24, 71, 0.5f, 2);
    fill_random(bi, 24, 72, -1, 1);
    fill_random(x, 2 * 5 * 24, 73, -4, 4);
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 3, dx, NULL);
    ob_init_f32(b, "s", 1, dv, sc);
    ob_init_f32(b, "b", 1, dv, bi);
    ob_init_f32(b, "two", 1, one, &two);
    ob_init_f32(b, "eps", 1, one, &eps);
    ob_attr_ints(b, ob_node(b, "ReduceMean", "x", "m"), "axes", axes, 1);
    ob_node(b, "Sub", "x,m", "d");
    ob_node(b, "Pow", "d,two", "p");
    ob_attr_ints(b, ob_node(b, "ReduceMean", "p", "v"), "axes", axes, 1);
    ob_node(b, "Add", "v,eps", "ve");
    ob_node(b, "Sqrt", "ve", "sd");
    ob_node(b, "Div", "d,sd", "n");
    ob_node(b, "Mul", "n,s", "g");
    ob_node(b, "Add", "g,b", "y");
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK(m);
    TIn in = {CRUN_DTYPE_FLOAT, 3, {2, 5, 24}, x};
    crun_session *s = run_inputs(m, 1, 1, &in);
    CHECK(s);
    crun_step_info st;
    crun_tensor y;
    bool one_step = crun_session_step_count(s) == 1 && crun_session_step_info(s, 0, &st) == CRUN_OK &&
                    strcmp(st.op_type, "LayerNormalization") == 0;
    bool ok = crun_session_get_output(s, 0, &y) == CRUN_OK;
    for (int r = 0; r < 10 && ok; r++) { /* the nine ops' arithmetic, in double */
        const float *xr = x + r * 24;
        double mean = 0, var = 0;
        for (int i = 0; i < 24; i++)
            mean += xr[i] / 24.0;
        for (int i = 0; i < 24; i++)
            var += (xr[i] - mean) * (xr[i] - mean) / 24.0;
        for (int i = 0; i < 24 && ok; i++) {
            double want = (xr[i] - mean) / sqrt(var + 1e-5) * sc[i] + bi[i];
            ok = fabs(((const float *)y.data)[r * 24 + i] - want) <= 1e-4 * (1 + fabs(want));
        }
    }
    crun_session_free(s);
    crun_model_free(m);
    CHECK_MSG(one_step, "the pattern did not become one LayerNormalization step");
    CHECK_MSG(ok, "fused LayerNorm differs from the nine ops' arithmetic");
}

/* ---- float16-weight models ---- */

/* A model of one weighted op: x through op with weight w (stored as float16 and cast to
 * float when half is set, else as float32 holding the same rounded values), then Relu. */
static crun_model *weighted_model(const char *op, const int64_t *dx, int rx, const int64_t *dw, int rw,
                                  const float *w, bool half)
{
    int64_t nw = 1;
    for (int i = 0; i < rw; i++)
        nw *= dw[i];
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, rx, dx, NULL);
    if (half) {
        uint16_t *h = malloc((size_t)nw * 2);
        for (int64_t i = 0; i < nw; i++)
            h[i] = f32_to_fp16(w[i]);
        ob_initializer(b, ob_tensor(b, "w16", CRUN_DTYPE_FLOAT16, rw, dw, h));
        free(h);
        ob_attr_int(b, ob_node(b, "Cast", "w16", "w"), "to", CRUN_DTYPE_FLOAT);
    } else {
        float *r = malloc((size_t)nw * 4);
        for (int64_t i = 0; i < nw; i++)
            r[i] = fp16_to_f32(f32_to_fp16(w[i]));
        ob_init_f32(b, "w", rw, dw, r);
        free(r);
    }
    Onnx__NodeProto *n = ob_node(b, op, "x,w", "c");
    if (strcmp(op, "Conv") == 0 && dw[2] == 3) {
        int64_t pads[4] = {1, 1, 1, 1};
        ob_attr_ints(b, n, "pads", pads, 4);
    }
    if (strcmp(op, "Gemm") == 0)
        ob_attr_int(b, n, "transB", 1);
    ob_node(b, "Relu", "c", "y");
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    return m;
}

/* Under every ISA: where the CPU has half-precision arithmetic the float16 model's op runs
 * a _f16 kernel (reported as float16) within float16's rounding of the float model; below
 * it, the same kernel as the float model with the same bits. */
static bool f16_model_case(const char *op, const int64_t *dx, int rx, const int64_t *dw, int rw, char *why,
                           size_t size)
{
    int64_t nx = 1, nw = 1;
    for (int i = 0; i < rx; i++)
        nx *= dx[i];
    for (int i = 0; i < rw; i++)
        nw *= dw[i];
    float *x = malloc((size_t)nx * 4), *w = malloc((size_t)nw * 4);
    fill_random(x, nx, 31, -1, 1);
    fill_random(w, nw, 32, -1, 1);
    crun_model *m16 = weighted_model(op, dx, rx, dw, rw, w, true), *m32 = weighted_model(op, dx, rx, dw, rw, w, false);
    TIn in = {CRUN_DTYPE_FLOAT, rx, {0}, x};
    memcpy(in.dims, dx, (size_t)rx * sizeof *dx);
    bool ok = m16 && m32;
    if (!ok)
        snprintf(why, size, "did not load: %s", crun_last_error());
    for (int isa = -1; isa < ISA_COUNT && ok; isa++) {
        if (!kernels_select(isa))
            continue;
        crun_session *s16 = run_inputs(m16, 2, 1, &in), *s32 = run_inputs(m32, 2, 1, &in);
        crun_tensor t16, t32;
        crun_step_info i16, i32;
        ok = s16 && s32 && crun_session_get_output(s16, 0, &t16) == CRUN_OK &&
             crun_session_get_output(s32, 0, &t32) == CRUN_OK && crun_session_step_info(s16, 0, &i16) == CRUN_OK &&
             crun_session_step_info(s32, 0, &i32) == CRUN_OK && t16.size_bytes == t32.size_bytes;
        bool half = ok && strstr(i16.kernel, "_f16") != NULL;
        if (!ok) {
            snprintf(why, size, "did not run: %s", crun_last_error());
        } else if (half != (isa != -1 && isa_allowed(ISA_NEONFP16))) {
            snprintf(why, size, "under %s the float16 model ran %s", isa < 0 ? "reference" : isa_name((Isa)isa),
                     i16.kernel);
            ok = false;
        } else if (half) {
            const float *y = t16.data, *r = t32.data;
            long n = (long)(t32.size_bytes / 4);
            float big = 0;
            for (long i = 0; i < n; i++)
                big = fabsf(r[i]) > big ? fabsf(r[i]) : big;
            char sub[160];
            ok = i16.precision == CRUN_DTYPE_FLOAT16 && floats_close(y, r, n, 1e-2, 1e-2 * big, sub, sizeof sub);
            if (!ok)
                snprintf(why, size, "%s (%s): %s", i16.kernel, crun_dtype_name(i16.precision), sub);
        } else if (strcmp(i16.kernel, i32.kernel) != 0 || memcmp(t16.data, t32.data, t32.size_bytes) != 0) {
            snprintf(why, size, "under %s: %s differs from the float model's %s",
                     isa < 0 ? "reference" : isa_name((Isa)isa), i16.kernel, i32.kernel);
            ok = false;
        }
        crun_session_free(s16);
        crun_session_free(s32);
    }
    kernels_select_done();
    crun_model_free(m16);
    crun_model_free(m32);
    free(x);
    free(w);
    return ok;
}

TEST(f16_weight_models_compute_in_float16_where_the_cpu_can)
{
    char why[240];
    int64_t x4[4] = {2, 19, 11, 13}, w3[4] = {21, 19, 3, 3}, w1[4] = {37, 19, 1, 1};
    CHECK_MSG(f16_model_case("Conv", x4, 4, w3, 4, why, sizeof why), "Conv 3x3: %s", why);
    CHECK_MSG(f16_model_case("Conv", x4, 4, w1, 4, why, sizeof why), "Conv 1x1: %s", why);
    int64_t x2[2] = {3, 300}, wg[2] = {45, 300}, x3[3] = {2, 5, 77}, wm[2] = {77, 33};
    CHECK_MSG(f16_model_case("Gemm", x2, 2, wg, 2, why, sizeof why), "Gemm: %s", why);
    CHECK_MSG(f16_model_case("MatMul", x3, 3, wm, 2, why, sizeof why), "MatMul: %s", why);
}
