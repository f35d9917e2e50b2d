/* conv.c - Conv in 1, 2 and 3 spatial dimensions.
 *
 * Kernels: float32 through the packed GEMM with im2col done inside B's packing (no
 * im2col buffer), 1x1 convolutions as plain GEMMs, a direct depthwise kernel, and a
 * naive direct loop that is the oracle and the path for other types. 1-D and 2-D are
 * handled as 3-D with leading unit dims. */
#include <stdio.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/tensor_common.h"
#include "ops/winograd.h"
#include "platforms/winograd.h"
#include "runtime/threadpool.h"

static crun_status parse_conv(Node *n, Diag *d)
{
    ConvParams *p = params_alloc(n, sizeof *p, d);
    return p ? conv_params_parse(n, p, d) : d->status;
}

crun_status conv_params_parse(Node *n, ConvParams *p, Diag *d)
{
    crun_status st = window_attrs_parse(n, &p->w, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "group", 1, &p->group, d);
    if (st == CRUN_OK && p->group < 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "group must be >= 1 (got %lld)", (long long)p->group);
    return st;
}

const char *conv_geom(const ConvParams *p, const Tensor *x, const Tensor *w, ConvGeom *g, char *buf,
                             size_t bufsz)
{
    memset(g, 0, sizeof *g);
    if (w->rank != x->rank)
        return "weight rank differs from input rank";
    if (x->rank < 3)
        return "input must have 1 to 3 spatial dims";
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = w->dims[0];
    g->G = p->group;
    if (g->C % g->G || g->M % g->G) {
        snprintf(buf, bufsz, "channels (%lld in, %lld out) are not divisible by group %lld", (long long)g->C,
                 (long long)g->M, (long long)g->G);
        return buf;
    }
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
    if (w->dims[1] != g->Cg) {
        snprintf(buf, bufsz, "weight has %lld input channels, expected %lld", (long long)w->dims[1], (long long)g->Cg);
        return buf;
    }
    return window_geom(&p->w, x->rank - 2, x->dims + 2, w->dims + 2, false, &g->w, buf, bufsz);
}

CRUN_FOR_SIZE static crun_status conv_infer(InferCtx *c)
{
    const Tensor *x = c->in[0], *w = c->in[1];
    NODE_CHECK(c, x->dtype == w->dtype, "X is %s but W is %s", dtype_name(x->dtype), dtype_name(w->dtype));
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    ConvGeom g;
    char buf[160];
    const char *err = conv_geom(c->params, x, w, &g, buf, sizeof buf);
    NODE_CHECK(c, !err, "%s", err);
    if (c->n_in > 2 && c->in[2])
        NODE_CHECK(c, tensor_numel(c->in[2]) == g.M && c->in[2]->dtype == x->dtype, "bias must have %lld values",
                   (long long)g.M);
    int64_t dims[CRUN_MAX_RANK] = {g.N, g.M};
    for (int i = 0; i < g.w.nsp; i++)
        dims[2 + i] = g.w.out[3 - g.w.nsp + i];
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

static int64_t conv_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    ConvGeom g;
    char buf[160];
    if (conv_geom(n->params, in[0], in[1], &g, buf, sizeof buf))
        return 0;
    return 2 * g.N * g.M * g.w.out_vol * g.Cg * g.w.k_vol;
}

void conv_geom_known(const void *params, const Tensor *x, const Tensor *w, ConvGeom *g)
{
    char buf[160];
    const char *err = conv_geom(params, x, w, g, buf, sizeof buf);
    assert(!err); /* infer checked these shapes */
    (void)err;
}

static void geom_of(const KernelCtx *k, ConvGeom *g) { conv_geom_known(k->params, k->in[0], k->in[1], g); }

/* ================= naive direct convolution (oracle; any float type) ================= */

CRUN_FOR_SIZE static crun_status conv_run_naive(KernelCtx *k)
{
    const Tensor *x = k->in[0], *w = k->in[1], *b = k->n_in > 2 ? k->in[2] : NULL;
    Tensor *y = k->out[0];
    ConvGeom g;
    geom_of(k, &g);
    bool f32 = y->dtype == CRUN_DTYPE_FLOAT;
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t m = 0; m < g.M; m++) {
            int64_t grp = m / g.Mg;
            for (int64_t oz = 0; oz < g.w.out[0]; oz++)
                for (int64_t oy = 0; oy < g.w.out[1]; oy++)
                    for (int64_t ox = 0; ox < g.w.out[2]; ox++) {
                        double s = b ? tensor_get_double(b, m) : 0.0;
                        for (int64_t c = 0; c < g.Cg; c++)
                            for (int64_t kz = 0; kz < g.w.k[0]; kz++) {
                                int64_t iz = oz * g.w.s[0] - g.w.pb[0] + kz * g.w.d[0];
                                if (iz < 0 || iz >= g.w.in[0])
                                    continue;
                                for (int64_t ky = 0; ky < g.w.k[1]; ky++) {
                                    int64_t iy = oy * g.w.s[1] - g.w.pb[1] + ky * g.w.d[1];
                                    if (iy < 0 || iy >= g.w.in[1])
                                        continue;
                                    for (int64_t kx = 0; kx < g.w.k[2]; kx++) {
                                        int64_t ix = ox * g.w.s[2] - g.w.pb[2] + kx * g.w.d[2];
                                        if (ix < 0 || ix >= g.w.in[2])
                                            continue;
                                        int64_t xi = (((n * g.C + grp * g.Cg + c) * g.w.in[0] + iz) * g.w.in[1] + iy) *
                                                         g.w.in[2] + ix;
                                        int64_t wi = (((m * g.Cg + c) * g.w.k[0] + kz) * g.w.k[1] + ky) * g.w.k[2] + kx;
                                        s += tensor_get_double(x, xi) * tensor_get_double(w, wi);
                                    }
                                }
                            }
                        int64_t yi = ((n * g.M + m) * g.w.out[0] + oz) * g.w.out[1] * g.w.out[2] + oy * g.w.out[2] + ox;
                        tensor_set_double(y, yi, f32 ? act_apply1(&k->node->act, (float)s) : s);
                    }
        }
    return CRUN_OK;
}

/* ================= float32 through the packed GEMM ================= */

/* Plan-time functions of this -O3 file (choosing and packing, run once): built for size. */
#if defined(__GNUC__) && !defined(__clang__)
#define PLAN_TIME __attribute__((optimize("Os")))
#else
#define PLAN_TIME
#endif

/* Prepared state of a float32 GEMM convolution: the weights packed for the microkernel,
 * shared by the model's plans (or held inline when there is no shared cache). */
typedef struct ConvState {
    const GemmUkernel *uk;
    size_t group_stride; /* bytes between the packed weights of two groups */
    const float *packed;
    float inline_w[];
} ConvState;

/* The half-precision variants' kernel data: their microkernels compute in float16. */
KV_SIMD_ONLY static const bool conv_in_half = true;

/* The microkernel of a variant for M rows: float16 ones for the _f16 variants. */
static const GemmUkernel *conv_ukernel(const PrepCtx *c, int64_t M)
{
    return c->kdata == &conv_in_half ? gemm_ukernel_f16_for(M) : gemm_ukernel_for(M);
}

bool conv_is_pointwise(const ConvGeom *g)
{
    for (int i = 0; i < 3; i++)
        if (g->w.k[i] != 1 || g->w.s[i] != 1 || g->w.pb[i] || g->w.pe[i])
            return false;
    return true;
}

static bool weights_const_f32(const PrepCtx *c)
{
    return c->in[0]->dtype == CRUN_DTYPE_FLOAT && c->in[1]->data != NULL;
}

/* Each group's [Mg x Cg*kvol] weights packed as A for the best microkernel. */
PLAN_TIME static void fill_packed_w(const void *ctx, void *dst)
{
    const PrepCtx *c = ctx;
    ConvGeom g;
    char buf[160];
    conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf);
    const GemmUkernel *uk = conv_ukernel(c, g.Mg);
    int64_t K = g.Cg * g.w.k_vol;
    size_t stride = gemm_packed_a_bytes(uk, g.Mg, K);
    const float *w = c->in[1]->data;
    for (int64_t grp = 0; grp < g.G; grp++) {
        GemmMatrix a = {w + grp * g.Mg * K, K, false};
        gemm_pack_a(uk, &a, g.Mg, K, (float *)((char *)dst + grp * stride));
    }
}

/* The state of a GEMM variant: weights packed by fill (packed bytes), shared under tag
 * when the model has a pack cache, else inline. NULL (after the message) without memory. */
PLAN_TIME static ConvState *conv_state_packed(PrepCtx *c, const GemmUkernel *uk, size_t packed, size_t group_stride,
                                    const char *tag, void (*fill)(const void *c, void *dst))
{
    size_t inline_bytes = c->packs ? 0 : packed;
    ConvState *s = mem_alloc_aligned(sizeof(ConvState) + inline_bytes);
    if (s) {
        s->uk = uk;
        s->group_stride = group_stride;
        s->packed = c->packs ? prep_shared(c, tag, packed, fill) : s->inline_w;
        prep_packed_away(c, c->in[1]);
        if (!c->packs)
            fill(c, s->inline_w);
    }
    if (!s || !s->packed) {
        mem_free(s);
        node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
        return NULL;
    }
    c->state = s;
    c->state_bytes = sizeof(ConvState) + inline_bytes;
    return s;
}

PLAN_TIME static crun_status conv_gemm_prepare(PrepCtx *c)
{
    ConvGeom g;
    char buf[160];
    conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf);
    const GemmUkernel *uk = conv_ukernel(c, g.Mg);
    int64_t K = g.Cg * g.w.k_vol;
    size_t per_group = gemm_packed_a_bytes(uk, g.Mg, K);
    /* Tagged by microkernel: plans made under another ISA limit need their own packing. */
    ConvState *s = conv_state_packed(c, uk, per_group * (size_t)g.G, per_group, uk->name, fill_packed_w);
    if (!s)
        return c->d->status;
    GemmArgs ga = {.M = g.Mg, .N = g.w.out_vol, .K = K, .uk = uk, .a_packed = s->packed};
    c->ws_bytes = gemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

typedef struct Im2col {
    const ConvGeom *g;
    const float *x; /* first channel of this image and group */
} Im2col;

/* Fills n columns of one packed row, reading input row `row` (NULL: in the padding) at
 * ix = (ox0 + i) * sx + off for column i, zero where ix falls outside [0, W). */
static void im2col_piece(float *d, const float *row, int64_t W, int64_t ox0, int64_t n, int64_t sx, int64_t off)
{
    if (!row) {
        memset(d, 0, (size_t)n * sizeof *d);
        return;
    }
    /* Columns [lo, hi) read inside the row (ix = base + i * sx in [0, W)); zeros around. */
    int64_t base = ox0 * sx + off;
    int64_t lo = base >= 0 ? 0 : (-base + sx - 1) / sx;
    int64_t hi = W - base <= 0 ? 0 : (W - base + sx - 1) / sx;
    lo = CRUN_MIN(lo, n);
    hi = CRUN_MAX(lo, CRUN_MIN(hi, n));
    for (int64_t i = 0; i < lo; i++) /* a pad of a few columns at most: no call */
        d[i] = 0.0f;
    if (sx == 1)
        memcpy(d + lo, row + base + lo, (size_t)(hi - lo) * sizeof *d);
    else
        for (int64_t i = lo; i < hi; i++)
            d[i] = row[base + i * sx];
    for (int64_t i = hi; i < n; i++)
        d[i] = 0.0f;
}

/* A run of packed columns that read one output row: dst offset (strip and lane), the
 * output row's first input row and plane (oy * sy - pt, oz * sz - pz), first column. */
typedef struct Im2colPiece {
    int64_t dst, iy0, iz0, ox0, n;
} Im2colPiece;

/* Splits columns [n0, n0+nc) into pieces that stay within one output row and one strip. */
static int im2col_pieces(const WindowGeom *w, int64_t n0, int64_t nc, int64_t kc, int nr, Im2colPiece *pc)
{
    int64_t OW = w->out[2], OH = w->out[1];
    int64_t col = n0, ox = n0 % OW, t = n0 / OW;
    int np = 0;
    while (col < n0 + nc) {
        int64_t rel = col - n0, lane = rel % nr;
        int64_t n = CRUN_MIN(CRUN_MIN(OW - ox, n0 + nc - col), nr - lane);
        pc[np++] = (Im2colPiece){(rel / nr) * kc * nr + lane, (t % OH) * w->s[1] - w->pb[1],
                                 (t / OH) * w->s[0] - w->pb[0], ox, n};
        col += n;
        ox += n;
        if (ox == OW) {
            ox = 0;
            t++;
        }
    }
    return np;
}

/* B[k][n] = x[c][iz][iy][ix] for k = (c, kz, ky, kx) and n = (oz, oy, ox), 0 in padding.
 * Each packed row is filled output row by output row, so the inner work is a copy of a
 * contiguous input span (for stride 1) instead of a bounds check per element. */
static void pack_b_im2col(const void *src, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst)
{
    const Im2col *ic = src;
    const WindowGeom *w = &ic->g->w;
    Im2colPiece pieces[2 * GEMM_NC + 2]; /* each strip or row boundary starts one */
    assert(nc <= GEMM_NC);
    int np = im2col_pieces(w, n0, nc, kc, nr, pieces);
    int64_t kx = k0 % w->k[2], ky = (k0 / w->k[2]) % w->k[1], kz = (k0 / (w->k[2] * w->k[1])) % w->k[0];
    int64_t c = k0 / w->k_vol, tail = nc % nr;
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *plane = ic->x + c * w->in_vol;
        int64_t off = kx * w->d[2] - w->pb[2], dy = ky * w->d[1], dz = kz * w->d[0];
        float *d = dst + kk * nr;
        for (int p = 0; p < np; p++) {
            const Im2colPiece *pc = &pieces[p];
            int64_t iy = pc->iy0 + dy, iz = pc->iz0 + dz;
            bool inside = iy >= 0 && iy < w->in[1] && iz >= 0 && iz < w->in[0];
            im2col_piece(d + pc->dst, inside ? plane + (iz * w->in[1] + iy) * w->in[2] : NULL, w->in[2], pc->ox0,
                         pc->n, w->s[2], off);
        }
        if (tail) /* the last strip's lanes past nc */
            memset(d + (nc / nr) * kc * nr + tail, 0, (size_t)(nr - tail) * sizeof *d);
        conv_next_tap(w, &c, &kz, &ky, &kx);
    }
}

static crun_status conv_gemm_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *b = k->n_in > 2 ? k->in[2] : NULL;
    const ConvState *s = k->state;
    ConvGeom g;
    geom_of(k, &g);
    int64_t K = g.Cg * g.w.k_vol;
    bool pointwise = conv_is_pointwise(&g);
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t grp = 0; grp < g.G; grp++) {
            const float *xg = (const float *)x->data + (n * g.C + grp * g.Cg) * g.w.in_vol;
            float *yg = (float *)k->out[0]->data + (n * g.M + grp * g.Mg) * g.w.out_vol;
            Im2col ic = {&g, xg};
            GemmMatrix xm = {xg, g.w.in_vol, false};
            GemmArgs ga = {.M = g.Mg, .N = g.w.out_vol, .K = K, .uk = s->uk,
                           .a_packed = (const float *)((const char *)s->packed + grp * s->group_stride),
                           .pack_b = pointwise ? gemm_pack_b_matrix : pack_b_im2col,
                           .b_src = pointwise ? (const void *)&xm : (const void *)&ic, .c = yg, .ldc = g.w.out_vol,
                           .alpha = 1.0f, .beta = 1.0f, .act = k->node->act};
            if (b) {
                ga.bias_kind = GEMM_BIAS_ROW;
                ga.bias = (const float *)b->data + grp * g.Mg;
            }
            gemm_run(&ga, k->ws, k->pool);
        }
    return CRUN_OK;
}

/* ---- few pixels, many channels: the GEMM turned around ---- */

/* With few output pixels (late layers: 7x7, 14x14) and many channels, C = W . im2col has
 * a short N the microkernel's lanes waste; C^T = im2col^T . W^T puts the channels along
 * the lanes instead. The im2col matrix is built in scratch, C^T lands in scratch with the
 * bias and activation applied, and one transpose writes the NCHW planes. Single group,
 * one thread. */

PLAN_TIME static bool pixels_applies(const PrepCtx *c, const void *kdata)
{
    ConvGeom g;
    char buf[160];
    if (!weights_const_f32(c) || conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf) || g.G != 1)
        return false;
    /* Measured on ResNet-18's 7x7 layers: 1.3x at one thread; with more, the usual
     * orientation splits the weight rows between threads and scales better. */
    return c->n_threads == 1 && g.w.out_vol < 128 && g.M >= 32 && g.M >= g.w.out_vol;
}

/* Packcache tags per microkernel (W^T packed as B differs from W packed as A). */
PLAN_TIME static const char *pixels_tag(const GemmUkernel *uk)
{
    static const char *const tags[] = {"conv_px0", "conv_px1", "conv_px2", "conv_px3", "conv_px4", "conv_px5",
                                       "conv_px6", "conv_px7", "conv_px8", "conv_px9", "conv_px10", "conv_px11"};
    for (int i = 0; i < gemm_ukernel_count() && i < (int)(sizeof tags / sizeof tags[0]); i++)
        if (gemm_ukernel_at(i) == uk)
            return tags[i];
    return "conv_px";
}

PLAN_TIME static void fill_packed_wt(const void *ctx, void *dst)
{
    const PrepCtx *c = ctx;
    ConvGeom g;
    char buf[160];
    conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf);
    GemmMatrix wt = {c->in[1]->data, g.Cg * g.w.k_vol, true}; /* B = W^T */
    gemm_pack_b_full(gemm_ukernel_for(g.w.out_vol), gemm_pack_b_matrix, &wt, g.Cg * g.w.k_vol, g.M, dst);
}

/* Scratch layout: the im2col matrix [K][P] (none for a 1x1), C^T [P][M], the GEMM's. */
static size_t pixels_col_bytes(const ConvGeom *g)
{
    return conv_is_pointwise(g) ? 0 : align_up((size_t)(g->Cg * g->w.k_vol * g->w.out_vol) * 4, CRUN_ALIGN);
}

static size_t pixels_ct_bytes(const ConvGeom *g) { return align_up((size_t)(g->w.out_vol * g->M) * 4, CRUN_ALIGN); }

PLAN_TIME static crun_status pixels_prepare(PrepCtx *c)
{
    ConvGeom g;
    char buf[160];
    conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf);
    const GemmUkernel *uk = gemm_ukernel_for(g.w.out_vol);
    int64_t K = g.Cg * g.w.k_vol;
    ConvState *s = conv_state_packed(c, uk, gemm_packed_b_bytes(uk, K, g.M), 0, pixels_tag(uk), fill_packed_wt);
    if (!s)
        return c->d->status;
    GemmArgs ga = {.M = g.w.out_vol, .N = g.M, .K = K, .uk = uk, .b_packed = s->packed};
    c->ws_bytes = pixels_col_bytes(&g) + pixels_ct_bytes(&g) + gemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

typedef struct PixelsJob {
    const ConvGeom *g;
    const float *x;
    float *col;
} PixelsJob;

enum { PIXELS_ROWS = 64 }; /* im2col rows per task */

/* col[k][p] = the input under tap k = (c, ky, kx) at output pixel p, 0 in the padding,
 * for rows k of task t. */
static void pixels_im2col(void *ctx, int64_t t, int thread)
{
    const PixelsJob *j = ctx;
    const ConvGeom *g = j->g;
    const WindowGeom *w = &g->w;
    const float *x = j->x;
    float *col = j->col;
    int64_t P = w->out_vol, OW = w->out[2], k0 = t * PIXELS_ROWS, k1 = CRUN_MIN(k0 + PIXELS_ROWS, g->Cg * w->k_vol);
    int64_t c = k0 / w->k_vol, kz = k0 % w->k_vol / (w->k[1] * w->k[2]), ky = k0 % (w->k[1] * w->k[2]) / w->k[2],
            kx = k0 % w->k[2];
    (void)thread;
    for (int64_t k = k0; k < k1; k++) {
        for (int64_t oz = 0; oz < w->out[0]; oz++)
            for (int64_t oy = 0; oy < w->out[1]; oy++) {
                int64_t iz = oz * w->s[0] - w->pb[0] + kz * w->d[0], iy = oy * w->s[1] - w->pb[1] + ky * w->d[1];
                bool inside = iz >= 0 && iz < w->in[0] && iy >= 0 && iy < w->in[1];
                const float *row = inside ? x + ((c * w->in[0] + iz) * w->in[1] + iy) * w->in[2] : NULL;
                im2col_piece(col + k * P + (oz * w->out[1] + oy) * OW, row, w->in[2], 0, OW, w->s[2],
                             kx * w->d[2] - w->pb[2]);
            }
        conv_next_tap(w, &c, &kz, &ky, &kx);
    }
}

static crun_status pixels_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *b = k->n_in > 2 ? k->in[2] : NULL;
    const ConvState *s = k->state;
    ConvGeom g;
    geom_of(k, &g);
    int64_t K = g.Cg * g.w.k_vol, P = g.w.out_vol;
    size_t col_bytes = pixels_col_bytes(&g);
    float *col = k->ws, *ct = (float *)((char *)k->ws + col_bytes);
    void *gws = (char *)k->ws + col_bytes + pixels_ct_bytes(&g);
    for (int64_t n = 0; n < g.N; n++) {
        const float *xn = (const float *)x->data + n * g.C * g.w.in_vol;
        float *yn = (float *)k->out[0]->data + n * g.M * P;
        PixelsJob pj = {&g, xn, col};
        if (col_bytes)
            pool_for(k->pool, (K + PIXELS_ROWS - 1) / PIXELS_ROWS, pixels_im2col, &pj);
        GemmArgs ga = {.M = P, .N = g.M, .K = K, .uk = s->uk, .a = {col_bytes ? col : xn, P, true},
                       .b_packed = s->packed, .c = ct, .ldc = g.M, .alpha = 1.0f, .beta = 1.0f,
                       .act = k->node->act};
        if (b) {
            ga.bias_kind = GEMM_BIAS_COL;
            ga.bias = b->data;
        }
        gemm_run(&ga, gws, k->pool);
        transpose_f32(ct, yn, P, g.M); /* C^T [P][M] -> Y [M][P] */
    }
    return CRUN_OK;
}

/* ================= depthwise 2-D (one output channel per input channel) ================= */

static bool depthwise_applies(const PrepCtx *c, const void *kdata)
{
    if (c->in[0]->dtype != CRUN_DTYPE_FLOAT || c->in[0]->rank != 4)
        return false;
    const ConvParams *p = c->params;
    return p->group > 1 && p->group == c->in[0]->dims[1] && c->in[1]->dims[0] == p->group;
}

typedef struct DwJob {
    const ConvGeom *g;
    const float *x, *w, *b;
    float *y;
    const Activation *act;
} DwJob;

static void depthwise_plane(void *ctx, int64_t t, int thread)
{
    const DwJob *j = ctx;
    const ConvGeom *g = j->g;
    int64_t c = t % g->C;
    const float *x = j->x + t * g->w.in_vol, *w = j->w + c * g->w.k_vol;
    float *y = j->y + t * g->w.out_vol;
    float bias = j->b ? j->b[c] : 0.0f;
    int64_t H = g->w.in[1], W = g->w.in[2], KH = g->w.k[1], KW = g->w.k[2];
    for (int64_t oy = 0; oy < g->w.out[1]; oy++) {
        int64_t iy0 = oy * g->w.s[1] - g->w.pb[1];
        for (int64_t ox = 0; ox < g->w.out[2]; ox++) {
            int64_t ix0 = ox * g->w.s[2] - g->w.pb[2];
            float s = 0.0f;
            for (int64_t ky = 0; ky < KH; ky++) {
                int64_t iy = iy0 + ky * g->w.d[1];
                if (iy < 0 || iy >= H)
                    continue;
                for (int64_t kx = 0; kx < KW; kx++) {
                    int64_t ix = ix0 + kx * g->w.d[2];
                    if (ix >= 0 && ix < W)
                        s += x[iy * W + ix] * w[ky * KW + kx];
                }
            }
            y[oy * g->w.out[2] + ox] = s + bias;
        }
    }
    act_apply_f32(j->act, y, g->w.out_vol);
}

static crun_status depthwise_run(KernelCtx *k)
{
    ConvGeom g;
    geom_of(k, &g);
    DwJob j = {&g, k->in[0]->data, k->in[1]->data, k->n_in > 2 && k->in[2] ? k->in[2]->data : NULL,
               k->out[0]->data, &k->node->act};
    pool_for(k->pool, g.N * g.C, depthwise_plane, &j);
    return CRUN_OK;
}

/* ---- depthwise through the SIMD window kernels (platforms/window.h) ---- */

KV_SIMD_ONLY static bool dw_simd_applies(const PrepCtx *c, const void *kdata)
{
    ConvGeom g;
    char buf[160];
    WindowPlane wp;
    return depthwise_applies(c, kdata) && !conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf) &&
           window_plane_init(&g.w, &wp);
}

/* A SIMD depthwise kernel's workspace: each thread's scratch, as `scratch` sizes it. */
static crun_status dw_prepare_scratch(PrepCtx *c, size_t (*scratch)(const WindowGeom *))
{
    ConvGeom g;
    char buf[160];
    conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf);
    c->ws_bytes = scratch(&g.w) * (size_t)c->n_threads;
    return CRUN_OK;
}

KV_SIMD_ONLY static crun_status dw_simd_prepare(PrepCtx *c)
{
    return dw_prepare_scratch(c, window_plane_scratch_bytes);
}

/* A SIMD depthwise step: per plane (dw_simd_plane), or per block of channels in bands of
 * output rows (dw_block_task; blocks and band). */
typedef struct DwSimdJob {
    const ConvGeom *g;
    const void *uk; /* WindowUkernels (planes) or WindowBlockUkernel */
    const float *x, *w, *b;
    float *y;
    const Activation *act;
    char *ws;
    size_t ws_per_thread;
    int64_t blocks; /* channel blocks per image */
    int64_t band;   /* output rows at a time */
} DwSimdJob;

static void dw_simd_plane(void *ctx, int64_t t, int thread)
{
    const DwSimdJob *j = ctx;
    int64_t c = t % j->g->C;
    WindowPlane wp;
    window_plane_init(&j->g->w, &wp);
    wp.x = j->x + t * j->g->w.in_vol;
    wp.y = j->y + t * j->g->w.out_vol;
    wp.w = j->w + c * j->g->w.k_vol;
    wp.bias = j->b ? j->b[c] : 0.0f;
    wp.scratch = (float *)(j->ws + (size_t)thread * j->ws_per_thread);
    /* Relu and Clip are the kernel's clamp; other activations run on the finished plane. */
    bool clamp = act_as_clamp(j->act, &wp.lo, &wp.hi);
    ((const WindowUkernels *)j->uk)->dwconv(&wp);
    if (!clamp)
        act_apply_f32(j->act, wp.y, j->g->w.out_vol);
}

KV_SIMD_ONLY static crun_status dw_simd_run(KernelCtx *k)
{
    ConvGeom g;
    geom_of(k, &g);
    DwSimdJob j = {&g, k->kdata, k->in[0]->data, k->in[1]->data, k->n_in > 2 && k->in[2] ? k->in[2]->data : NULL,
                   k->out[0]->data, &k->node->act, k->ws, window_plane_scratch_bytes(&g.w), 0, 0};
    pool_for(k->pool, g.N * g.C, dw_simd_plane, &j);
    return CRUN_OK;
}

/* ---- depthwise on blocks of channels (WindowBlock; ops/spatial.h says when) ---- */

KV_SIMD_ONLY static bool dw_block_applies(const PrepCtx *c, const void *kdata)
{
    ConvGeom g;
    char buf[160];
    return depthwise_applies(c, kdata) && !conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf) &&
           window_block_suits(&g.w);
}

KV_SIMD_ONLY static crun_status dw_block_prepare(PrepCtx *c)
{
    return dw_prepare_scratch(c, window_block_scratch_bytes);
}

static void dw_block_task(void *ctx, int64_t t, int thread)
{
    const DwSimdJob *j = ctx;
    const ConvGeom *g = j->g;
    const WindowBlockUkernel *uk = j->uk;
    int64_t n = t / j->blocks, c0 = t % j->blocks * uk->lanes;
    WindowBlock b = window_block_init(&g->w);
    b.n = (int)CRUN_MIN((int64_t)uk->lanes, g->C - c0);
    b.x = j->x + (n * g->C + c0) * g->w.in_vol;
    b.y = j->y + (n * g->C + c0) * g->w.out_vol;
    b.w = j->w + c0 * g->w.k_vol;
    b.bias = j->b ? j->b + c0 : NULL;
    b.scratch = (float *)(j->ws + (size_t)thread * j->ws_per_thread);
    /* Relu and Clip are the kernel's clamp; other activations run on the finished planes. */
    bool clamp = act_as_clamp(j->act, &b.lo, &b.hi);
    for (int64_t oy0 = 0; oy0 < b.OH; oy0 += j->band) {
        WindowBlock band = window_block_band_of(&b, oy0, CRUN_MIN(j->band, b.OH - oy0));
        uk->run(&band);
    }
    if (!clamp)
        act_apply_f32(j->act, b.y, b.n * g->w.out_vol);
}

KV_SIMD_ONLY static crun_status dw_block_run(KernelCtx *k)
{
    ConvGeom g;
    geom_of(k, &g);
    const WindowBlockUkernel *uk = k->kdata;
    WindowBlock b = window_block_init(&g.w);
    DwSimdJob j = {&g, uk, k->in[0]->data, k->in[1]->data, k->n_in > 2 && k->in[2] ? k->in[2]->data : NULL,
                    k->out[0]->data, &k->node->act, k->ws, window_block_scratch_bytes(&g.w),
                    (g.C + uk->lanes - 1) / uk->lanes, window_block_band(&b)};
    pool_for(k->pool, g.N * j.blocks, dw_block_task, &j);
    return CRUN_OK;
}

static bool pointwise_applies(const PrepCtx *c, const void *kdata)
{
    ConvGeom g;
    char buf[160];
    return weights_const_f32(c) && !conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf) && conv_is_pointwise(&g);
}

static bool gemm_applies(const PrepCtx *c, const void *kdata) { return weights_const_f32(c); }

/* Float16-weight models compute their GEMM convolutions in float16 where the CPU can. */
KV_SIMD_ONLY static bool pointwise_f16_applies(const PrepCtx *c, const void *kdata)
{
    return c->fp16_weights && pointwise_applies(c, kdata);
}

KV_SIMD_ONLY static bool gemm_f16_applies(const PrepCtx *c, const void *kdata)
{
    return c->fp16_weights && gemm_applies(c, kdata);
}

#ifndef CRUN_NO_WINOGRAD
static bool wino_applies(const PrepCtx *c, const void *kdata) { return winograd_applies(c); }
#endif

/* The 1x1 and im2col variants share code (the GEMM reads the input directly when the
 * kernel is pointwise); they are listed apart so plans say which one runs. */
static const KernelVariant conv_kernels[] = {
    KV_SIMD("conv_dw_block", dw_block_applies, dw_block_prepare, dw_block_run, window_dw_block)
    KV_SIMD("conv_dw", dw_simd_applies, dw_simd_prepare, dw_simd_run, window_ukernels)
    {"conv_dw_direct", ISA_SCALAR, depthwise_applies, NULL, depthwise_run, NULL},
#ifdef CRUN_HAVE_NEONFP16
    {"conv_1x1_gemm_f16", ISA_NEONFP16, pointwise_f16_applies, conv_gemm_prepare, conv_gemm_run, &conv_in_half},
    {"conv_im2col_gemm_f16", ISA_NEONFP16, gemm_f16_applies, conv_gemm_prepare, conv_gemm_run, &conv_in_half},
#endif
#ifndef CRUN_NO_WINOGRAD /* selective builds for models that never use it leave it out */
    KV_SIMD("conv_winograd", wino_applies, winograd_prepare, winograd_run, wino_ukernels)
    {"conv_winograd_f43", ISA_SCALAR, wino_applies, winograd_prepare, winograd_run, NULL},
#endif
    {"conv_gemm_pixels", ISA_SCALAR, pixels_applies, pixels_prepare, pixels_run, NULL},
    {"conv_1x1_gemm", ISA_SCALAR, pointwise_applies, conv_gemm_prepare, conv_gemm_run, NULL},
    {"conv_im2col_gemm", ISA_SCALAR, gemm_applies, conv_gemm_prepare, conv_gemm_run, NULL},
    {"conv_naive", ISA_SCALAR, NULL, NULL, conv_run_naive, NULL},
    {0}};
const OpDesc op_Conv = {"", "Conv", 2, 3, 1, 1, OPF_ACT_EPILOGUE, parse_conv, conv_infer, conv_flops, conv_kernels};
