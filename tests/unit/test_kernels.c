/* test_kernels.c - optimised kernels against the reference ones, on odd shapes that hit
 * every remainder path (tile edges, K and N beyond one cache block, threads). */
#include <stdlib.h>

#include "ops/gemm.h"
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
                  .bias_kind = GEMM_BIAS_COL, .bias = bias, .act = {ACT_RELU, 0, 0}};
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

/* Runs a one-Conv model with the best kernels and with the reference ones. */
static bool conv_best_vs_reference(int C, int H, int W, int M, int K, int stride, int pad, int group, int threads,
                                   char *why, size_t size)
{
    int64_t dx[4] = {2, C, H, W}, dw[4] = {M, C / group, K, K}, db[1] = {M};
    int64_t st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
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
    ob_node(b, "Relu", "c", "y"); /* fused into the conv's epilogue */
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    bool ok = m != NULL;
    float *out[2] = {NULL, NULL};
    long n_out = 0;
    for (int ref = 0; ref < 2 && ok; ref++) {
        kernels_use_reference(ref);
        TIn in = {CRUN_DTYPE_FLOAT, 4, {2, C, H, W}, x};
        crun_session *s = run_inputs(m, threads, 1, &in);
        crun_tensor t;
        ok = s && crun_session_get_output(s, 0, &t) == CRUN_OK;
        if (ok) {
            n_out = (long)(t.size_bytes / 4);
            out[ref] = malloc(t.size_bytes);
            memcpy(out[ref], t.data, t.size_bytes);
        }
        crun_session_free(s);
    }
    kernels_use_reference(false);
    if (ok)
        ok = floats_close(out[0], out[1], n_out, 1e-4, 1e-5, why, size);
    else
        snprintf(why, size, "did not run: %s", crun_last_error());
    free(out[0]);
    free(out[1]);
    free(x);
    free(w);
    free(bias);
    crun_model_free(m);
    return ok;
}

TEST(conv_kernels_match_reference)
{
    struct {
        int C, H, W, M, K, stride, pad, group;
    } cases[] = {
        {3, 13, 11, 8, 3, 1, 1, 1},   {16, 9, 9, 16, 3, 2, 1, 16}, {32, 7, 5, 32, 5, 1, 2, 32},
        {8, 6, 7, 24, 1, 1, 0, 1},    {12, 5, 5, 6, 3, 1, 0, 3},   {5, 17, 3, 7, 3, 2, 0, 1},
        {24, 8, 8, 24, 3, 2, 1, 24},  {1, 1, 1, 1, 1, 1, 0, 1},    {7, 20, 20, 9, 7, 3, 3, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int threads = 1; threads <= 2; threads++) {
            char why[200];
            bool ok = conv_best_vs_reference(cases[c].C, cases[c].H, cases[c].W, cases[c].M, cases[c].K,
                                             cases[c].stride, cases[c].pad, cases[c].group, threads, why, sizeof why);
            CHECK_MSG(ok, "case %zu threads %d: %s", c, threads, why);
        }
}
