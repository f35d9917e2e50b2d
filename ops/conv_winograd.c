/* conv_winograd.c - 3x3 stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3)
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
 *
 * Each 4x4 output tile comes from a 6x6 input patch d and the 3x3 filter g as
 *   Y = A^T [ (G g G^T) .* (B^T d B) ] A
 * so the products over the 36 positions xi of the transformed tile are 36 independent
 * matrix products U_xi[M x C] . V_xi[C x tiles], run on the packed GEMM: 36 multiplies
 * per 16 outputs instead of 144. U is computed and packed once per model (pack cache);
 * V and the products live in the step's workspace. The transforms are exact in real
 * arithmetic; in float they add a few ulp of the sums' magnitude. */
#include <stdio.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/winograd.h"
#include "platforms/winograd.h"
#include "runtime/threadpool.h"

#define WT 6  /* transformed tile side */
#define WO 4  /* output tile side */
#define WXI 36

typedef struct WinoGeom {
    ConvGeom g;
    int64_t th, tw, tiles; /* tile rows, tile columns, tiles per image */
    int64_t block_rows;    /* tile rows transformed, multiplied and transformed back at a time */
    int64_t block_tiles;   /* block_rows * tw */
} WinoGeom;

/* V and the products of a whole image stay in cache up to about this many bytes; above
 * it the image goes through in blocks of tile rows that do (a 96-to-24-channel 160x160
 * layer of PaddleOCR det had 28 MB of them, written and read back from memory: its two
 * such layers took 78 ms, in 2 MB blocks 42, in 1 MB blocks 47). Each block reads all of
 * U again and narrows the products, so images that fit are not blocked. */
#define WINO_WHOLE_BYTES ((size_t)4 << 20)
#define WINO_BLOCK_BYTES ((size_t)2 << 20)

static void geom_from(const void *params, const Tensor *x, const Tensor *w, WinoGeom *wg)
{
    char buf[160];
    conv_geom(params, x, w, &wg->g, buf, sizeof buf);
    wg->th = (wg->g.w.out[1] + WO - 1) / WO;
    wg->tw = (wg->g.w.out[2] + WO - 1) / WO;
    wg->tiles = wg->th * wg->tw;
    size_t row_bytes = (size_t)(WXI * (wg->g.C + wg->g.M) * wg->tw) * sizeof(float);
    wg->block_rows = wg->th;
    if (row_bytes * (size_t)wg->th > WINO_WHOLE_BYTES)
        wg->block_rows = CRUN_MAX((int64_t)1, CRUN_MIN(wg->th, (int64_t)(WINO_BLOCK_BYTES / row_bytes)));
    wg->block_tiles = wg->block_rows * wg->tw;
}

bool winograd_applies(const PrepCtx *c)
{
    const Tensor *x = c->in[0], *w = c->in[1];
    if (x->dtype != CRUN_DTYPE_FLOAT || !w->data || x->rank != 4)
        return false;
    ConvGeom g;
    char buf[160];
    if (conv_geom(c->params, x, w, &g, buf, sizeof buf) || g.G != 1)
        return false;
    for (int a = 1; a < 3; a++)
        if (g.w.k[a] != 3 || g.w.s[a] != 1 || g.w.d[a] != 1)
            return false;
    /* With few channels the transforms cost more than the multiplies they save; with
     * fewer tiles than a microkernel's column strip the products waste most lanes (on
     * AVX2, 16 tiles: a 14x14 output of 256 channels ran in 3.4 ms against im2col's 5.2;
     * 4 tiles, 7x7: 9.1 against 5.3). */
    int64_t tiles = ((g.w.out[1] + WO - 1) / WO) * ((g.w.out[2] + WO - 1) / WO);
    int64_t strip = gemm_ukernel_best()->nr;
    return g.C >= 8 && g.M >= 8 && tiles >= CRUN_MIN(strip, (int64_t)40);
}

/* ---- transforms ---- */

/* G g G^T of one 3x3 filter into u[36]. */
static void filter_transform(const float *g, float *u)
{
    static const float G[WT][3] = {{0.25f, 0, 0},
                                   {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                   {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                   {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                   {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                   {0, 0, 1}};
    float t[WT][3];
    for (int i = 0; i < WT; i++)
        for (int j = 0; j < 3; j++)
            t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
    for (int i = 0; i < WT; i++)
        for (int j = 0; j < WT; j++)
            u[i * WT + j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
}

/* B^T applied to six values d[0], d[s], ..., d[5s], into o[0], o[os], ... */
static inline void bt6(const float *d, int s, float *o, int os)
{
    float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    float a = d4 - 4.0f * d2, b = d3 - 4.0f * d1, e = d4 - d2, f = 2.0f * (d3 - d1);
    o[0] = 4.0f * d0 - 5.0f * d2 + d4;
    o[os] = a + b;
    o[2 * os] = a - b;
    o[3 * os] = e + f;
    o[4 * os] = e - f;
    o[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* A^T applied to six values m[0], m[s], ..., into o[0], o[os], o[2os], o[3os]. */
static inline void at6(const float *m, int s, float *o, int os)
{
    float m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s];
    float p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4;
    o[0] = m[0] + p12 + p34;
    o[os] = d12 + 2.0f * d34;
    o[2 * os] = p12 + 4.0f * p34;
    o[3 * os] = d12 + 8.0f * d34 + m[5 * s];
}

/* ---- weights: U_xi packed as GEMM A operands, one per position ---- */

static size_t u_stride_floats(const GemmUkernel *uk, const WinoGeom *wg)
{
    return gemm_packed_a_bytes(uk, wg->g.M, wg->g.C) / sizeof(float);
}

/* U_xi = (G g G^T)[xi] for every (m, c), written straight into packed-A layout. */
static void fill_packed_u(const void *ctx, void *dst)
{
    const PrepCtx *c = ctx;
    WinoGeom wg;
    geom_from(c->params, c->in[0], c->in[1], &wg);
    const GemmUkernel *uk = gemm_ukernel_for(wg.g.M);
    int64_t M = wg.g.M, C = wg.g.C;
    size_t stride = u_stride_floats(uk, &wg);
    float *u = dst;
    memset(u, 0, stride * WXI * sizeof(float)); /* the padding rows of the last strip */
    const float *w = c->in[1]->data;
    float t[WXI];
    for (int64_t m = 0; m < M; m++)
        for (int64_t ch = 0; ch < C; ch++) {
            filter_transform(w + (m * C + ch) * 9, t);
            for (int xi = 0; xi < WXI; xi++)
                u[xi * stride + gemm_packed_a_index(uk, C, m, ch)] = t[xi];
        }
}

/* ---- plan and run ---- */

typedef struct WinoState {
    const GemmUkernel *uk;
    size_t u_stride;
    const float *u;
    float inline_u[];
} WinoState;

/* Workspace: V [36][C][block tiles], the products [36][M][block tiles], per-thread
 * scratch of the vector transforms, then the GEMM's. */
static size_t v_floats(const WinoGeom *wg) { return align_up((size_t)(WXI * wg->g.C * wg->block_tiles), 16); }
static size_t p_floats(const WinoGeom *wg) { return align_up((size_t)(WXI * wg->g.M * wg->block_tiles), 16); }
static size_t scratch_floats(const WinoGeom *wg) { return align_up(wino_scratch_floats(wg->tw), 16); }

/* Product xi over a block of T tiles: P_xi[M x T] = U_xi . V_xi, with V_xi read (and
 * packed per block) as a plain matrix. Pointers are filled in by the caller. */
static GemmArgs product_args(const WinoState *s, const WinoGeom *wg, int64_t T)
{
    return (GemmArgs){.M = wg->g.M, .N = T, .K = wg->g.C, .uk = s->uk, .a_packed = s->u,
                      .pack_b = gemm_pack_b_matrix, .ldc = T, .alpha = 1.0f, .beta = 1.0f};
}

crun_status winograd_prepare(PrepCtx *c)
{
    WinoGeom wg;
    geom_from(c->params, c->in[0], c->in[1], &wg);
    const GemmUkernel *uk = gemm_ukernel_for(wg.g.M);
    size_t stride = u_stride_floats(uk, &wg), bytes = stride * WXI * sizeof(float);
    size_t inline_bytes = c->packs ? 0 : bytes;
    WinoState *s = mem_alloc_aligned(sizeof(WinoState) + inline_bytes);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    s->uk = uk;
    s->u_stride = stride;
    /* The tag names the transform and the microkernel: other kernels pack differently. */
    char tag[64];
    snprintf(tag, sizeof tag, "wino43:%s", uk->name);
    s->u = c->packs ? prep_shared(c, tag, bytes, fill_packed_u) : s->inline_u;
    prep_packed_away(c, c->in[1]);
    if (!c->packs)
        fill_packed_u(c, s->inline_u);
    if (!s->u) {
        mem_free(s);
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    }
    c->state = s;
    c->state_bytes = sizeof(WinoState) + inline_bytes;
    GemmArgs ga = product_args(s, &wg, wg.block_tiles);
    c->ws_bytes = (v_floats(&wg) + p_floats(&wg) + scratch_floats(&wg) * (size_t)c->n_threads) * sizeof(float) +
                  gemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

typedef struct WinoJob {
    const WinoGeom *wg;
    const WinoUkernels *uk; /* vector transforms, NULL for the portable ones below */
    const float *x;         /* this image */
    float *y;
    float *v, *prod, *scratch;
    const float *bias;
    const Activation *act;
    int64_t ty0, rows, T; /* this block: first tile row, tile rows, tiles */
} WinoJob;

/* The plane description the vector transforms take, for channel c of input or output,
 * over the job's block of tile rows. */
static WinoPlane plane_of(const WinoJob *j, int64_t c, bool output, int thread)
{
    const WinoGeom *wg = j->wg;
    WinoPlane w = {.H = wg->g.w.in[1], .W = wg->g.w.in[2], .OH = wg->g.w.out[1], .OW = wg->g.w.out[2],
                   .pt = wg->g.w.pb[1], .pl = wg->g.w.pb[2], .ty0 = j->ty0, .th = j->rows, .tw = wg->tw,
                   .scratch = j->scratch + (size_t)thread * scratch_floats(wg)};
    if (output) {
        w.y = j->y + c * w.OH * w.OW;
        w.v = j->prod + c * j->T;
        w.xi_stride = wg->g.M * j->T;
        w.bias = j->bias ? j->bias[c] : 0.0f;
    } else {
        w.x = j->x + c * w.H * w.W;
        w.v = j->v + c * j->T;
        w.xi_stride = wg->g.C * j->T;
    }
    return w;
}

/* Where SIMD transforms are built, the portable ones below run only as the reference
 * kernels: built for size there. */
#if defined(__GNUC__) && !defined(__clang__) && (defined(CRUN_HAVE_AVX2) || defined(CRUN_HAVE_NEON))
#define WINO_PORTABLE __attribute__((optimize("Os")))
#else
#define WINO_PORTABLE
#endif

/* V[xi][c][t] for the block's tiles t of channel c: B^T d B of the 6x6 patch at
 * (4ty - pt, 4tx - pl). */
WINO_PORTABLE static void input_transform(void *ctx, int64_t c, int thread)
{
    const WinoJob *j = ctx;
    if (j->uk) {
        WinoPlane w = plane_of(j, c, false, thread);
        j->uk->input_plane(&w);
        return;
    }
    const WinoGeom *wg = j->wg;
    int64_t H = wg->g.w.in[1], W = wg->g.w.in[2], T = j->T;
    const float *plane = j->x + c * H * W;
    float *v = j->v + c * T;
    for (int64_t ty = j->ty0; ty < j->ty0 + j->rows; ty++)
        for (int64_t tx = 0; tx < wg->tw; tx++) {
            int64_t y0 = ty * WO - wg->g.w.pb[1], x0 = tx * WO - wg->g.w.pb[2];
            float d[WXI], t[WXI], o[WXI];
            bool inside = y0 >= 0 && x0 >= 0 && y0 + WT <= H && x0 + WT <= W;
            for (int r = 0; r < WT; r++)
                for (int q = 0; q < WT; q++) {
                    int64_t iy = y0 + r, ix = x0 + q;
                    d[r * WT + q] = inside || (iy >= 0 && iy < H && ix >= 0 && ix < W) ? plane[iy * W + ix] : 0.0f;
                }
            for (int r = 0; r < WT; r++) /* rows: t = d B */
                bt6(d + r * WT, 1, t + r * WT, 1);
            for (int q = 0; q < WT; q++) /* columns: o = B^T t */
                bt6(t + q, WT, o + q, WT);
            int64_t tile = (ty - j->ty0) * wg->tw + tx;
            for (int xi = 0; xi < WXI; xi++)
                v[xi * wg->g.C * T + tile] = o[xi];
        }
}

/* Y = A^T P A for the block's tiles of output channel m, cropped to the output, + bias,
 * then the activation over the block's output rows. */
WINO_PORTABLE static void output_transform(void *ctx, int64_t m, int thread)
{
    const WinoJob *j = ctx;
    const WinoGeom *wg = j->wg;
    int64_t OH = wg->g.w.out[1], OW = wg->g.w.out[2], T = j->T;
    float *plane = j->y + m * OH * OW;
    int64_t oy0 = j->ty0 * WO, oy1 = CRUN_MIN(OH, (j->ty0 + j->rows) * WO);
    if (j->uk) {
        WinoPlane w = plane_of(j, m, true, thread);
        j->uk->output_plane(&w);
        act_apply_f32(j->act, plane + oy0 * OW, (oy1 - oy0) * OW);
        return;
    }
    const float *p = j->prod + m * T;
    float bias = j->bias ? j->bias[m] : 0.0f;
    for (int64_t ty = j->ty0; ty < j->ty0 + j->rows; ty++)
        for (int64_t tx = 0; tx < wg->tw; tx++) {
            int64_t tile = (ty - j->ty0) * wg->tw + tx;
            float mm[WXI], t[WO * WT], out[WO * WO];
            for (int xi = 0; xi < WXI; xi++)
                mm[xi] = p[xi * wg->g.M * T + tile];
            for (int q = 0; q < WT; q++) /* columns: t = A^T m */
                at6(mm + q, WT, t + q, WT);
            for (int r = 0; r < WO; r++) /* rows: out = t A */
                at6(t + r * WT, 1, out + r * WO, 1);
            int64_t rows = CRUN_MIN((int64_t)WO, OH - ty * WO), cols = CRUN_MIN((int64_t)WO, OW - tx * WO);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t q = 0; q < cols; q++)
                    plane[(ty * WO + r) * OW + tx * WO + q] = out[r * WO + q] + bias;
        }
    act_apply_f32(j->act, plane + oy0 * OW, (oy1 - oy0) * OW);
}

typedef struct ProductJob {
    const WinoState *s;
    const WinoGeom *wg;
    float *v, *prod;
    int64_t T; /* tiles in this block */
    char *ws;
    size_t ws_per_thread;
} ProductJob;

/* Product xi on one thread: the 36 products are independent and alike, so threads take
 * whole products (balanced, and one barrier for all of them instead of one each). */
static void product_task(void *ctx, int64_t xi, int thread)
{
    const ProductJob *j = ctx;
    GemmArgs ga = product_args(j->s, j->wg, j->T);
    GemmMatrix vm = {j->v + xi * j->wg->g.C * j->T, j->T, false};
    ga.a_packed = j->s->u + xi * j->s->u_stride;
    ga.b_src = &vm;
    ga.c = j->prod + xi * j->wg->g.M * j->T;
    gemm_run(&ga, j->ws + (size_t)thread * j->ws_per_thread, NULL);
}

crun_status winograd_run(KernelCtx *k)
{
    const WinoState *s = k->state;
    WinoGeom wg;
    geom_from(k->params, k->in[0], k->in[1], &wg);
    float *v = k->ws, *prod = v + v_floats(&wg), *scratch = prod + p_floats(&wg);
    char *gemm_ws = (char *)(scratch + scratch_floats(&wg) * (size_t)pool_threads(k->pool));
    const Tensor *b = k->n_in > 2 ? k->in[2] : NULL;
    GemmArgs most = product_args(s, &wg, wg.block_tiles);
    size_t gemm_ws_per = gemm_ws_bytes(&most, 1);
    for (int64_t n = 0; n < wg.g.N; n++)
        for (int64_t ty0 = 0; ty0 < wg.th; ty0 += wg.block_rows) {
            int64_t rows = CRUN_MIN(wg.block_rows, wg.th - ty0);
            WinoJob j = {&wg, k->kdata, (const float *)k->in[0]->data + n * wg.g.C * wg.g.w.in_vol,
                         (float *)k->out[0]->data + n * wg.g.M * wg.g.w.out_vol, v, prod, scratch,
                         b ? b->data : NULL, &k->node->act, ty0, rows, rows * wg.tw};
            pool_for(k->pool, wg.g.C, input_transform, &j);
            ProductJob pj = {s, &wg, v, prod, j.T, gemm_ws, gemm_ws_per};
            pool_for(k->pool, WXI, product_task, &pj);
            pool_for(k->pool, wg.g.M, output_transform, &j);
        }
    return CRUN_OK;
}
