/* qlinear_packed.c - QLinearConv, ConvInteger, QLinearMatMul and MatMulInteger with
 * constant weights on the packed 8-bit GEMM (qgemm.h): weights packed once per model,
 * activations packed per cache block (im2col for convolutions), zero points, bias and
 * requantization folded into the microkernel's epilogue. Bit-exact with qlinear.c. */
#include <math.h>
#include <string.h>

#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/qgemm.h"
#include "ops/qlinear.h"
#include "ops/spatial.h"
#include "platforms/window.h"
#include "runtime/packcache.h"
#include "runtime/threadpool.h"

static const Tensor *opt(const Tensor *const *in, int n_in, int i) { return i >= 0 && i < n_in ? in[i] : NULL; }

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* A variant of this ISA exists when a microkernel of it is built in (the registry has
 * already checked that the CPU allows the ISA). */
static bool qpacked_isa_ok(const void *kdata)
{
    const QPackedKernel *kv = kdata;
    return qgemm_ukernel_for_isa(kv->isa) != NULL;
}

/* The weights packed for one microkernel: groups of strips, then each row's sum. */
typedef struct QPackState {
    const QGemmUkernel *uk;
    size_t group_stride; /* bytes of packed A per group */
    const int8_t *packed;
    const int32_t *wsum;
    _Alignas(64) unsigned char inline_data[]; /* the packing when the model keeps no cache */
} QPackState;

/* Shape of the weights as GEMM rows: M rows of K in G groups; (m, k) at sm, sk. */
typedef struct QWeights {
    const Tensor *w;
    int64_t G, Mg, K, sm, sk, gstride; /* gstride: elements between groups' first rows */
} QWeights;

typedef struct QPackCtx {
    const QGemmUkernel *uk;
    QWeights q;
} QPackCtx;

static size_t qpack_bytes(const QPackCtx *p, size_t *group_stride)
{
    *group_stride = align64(qgemm_packed_a_bytes(p->uk, p->q.Mg, p->q.K));
    return *group_stride * (size_t)p->q.G + (size_t)(p->q.G * p->q.Mg) * sizeof(int32_t);
}

static void fill_qpack(const void *ctx, void *dst)
{
    const QPackCtx *p = ctx;
    size_t gs;
    qpack_bytes(p, &gs);
    int32_t *wsum = (int32_t *)((char *)dst + gs * (size_t)p->q.G);
    for (int64_t g = 0; g < p->q.G; g++)
        qgemm_pack_a(p->uk, (const uint8_t *)p->q.w->data + g * p->q.gstride, p->q.w->dtype == CRUN_DTYPE_INT8,
                     p->q.Mg, p->q.K, p->q.sm, p->q.sk, (int8_t *)((char *)dst + gs * (size_t)g), wsum + g * p->q.Mg);
}

/* Packs the weights (through the model's cache when there is one) into c->state. */
static crun_status qpack_prepare(PrepCtx *c, const QWeights *q)
{
    const QPackedKernel *kv = c->kdata;
    QPackCtx p = {qgemm_ukernel_for_isa(kv->isa), *q};
    size_t gs, bytes = qpack_bytes(&p, &gs), inline_bytes = c->packs ? 0 : bytes;
    QPackState *s = mem_alloc_aligned(sizeof *s + inline_bytes);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    const void *blk;
    if (c->packs) {
        blk = prep_shared_ctx(c, p.uk->name, bytes, fill_qpack, &p);
        prep_packed_away(c, q->w);
    } else {
        fill_qpack(&p, s->inline_data);
        blk = s->inline_data;
    }
    if (!blk) {
        mem_free(s);
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    }
    s->uk = p.uk;
    s->group_stride = gs;
    s->packed = blk;
    s->wsum = (const int32_t *)((const char *)blk + gs * (size_t)q->G);
    c->state = s;
    c->state_bytes = sizeof *s + inline_bytes;
    return CRUN_OK;
}

/* The per-row epilogue arrays for M rows, made at run time from the scales and zero
 * points (which may be computed values, as DynamicQuantizeLinear's are). */
typedef struct QRows {
    int32_t *row_add, *row_zw;
    float *mult;
} QRows;

static size_t qrows_bytes(int64_t M) { return 3 * align64((size_t)M * 4); }

static QRows qrows_at(void *ws, int64_t M)
{
    char *p = ws;
    size_t a = align64((size_t)M * 4);
    return (QRows){(int32_t *)p, (int32_t *)(p + a), (float *)(p + 2 * a)};
}

/* Operand facts in the kernel's canonical form (weights s8, activations as uk wants). */
typedef struct QSide {
    uint8_t flip;  /* xor applied to the activations when packing */
    int32_t zx;    /* activations' zero point after the flip */
} QSide;

static QSide qside(const QGemmUkernel *uk, const Tensor *x, const Tensor *zx)
{
    bool xs = x->dtype == CRUN_DTYPE_INT8;
    int32_t z = zp_at(zx, 0);
    if (xs == uk->b_signed)
        return (QSide){0, z};
    return (QSide){0x80, xs ? z + 128 : z - 128};
}

/* Fills rows[m] for M rows: row_add = bias - zx * wsum + K * zx * zw, row_zw = zw (NULL
 * unless some zw is nonzero), mult = sx * sw / sy. Returns whether row_zw is needed. */
static bool qrows_fill(QRows *r, int64_t M, int64_t K, const int32_t *wsum, const Tensor *w, const Tensor *zw,
                       QSide side, const Tensor *bias, const Tensor *sx, const Tensor *sw, float sy)
{
    bool any_zw = false;
    int32_t wshift = w->dtype == CRUN_DTYPE_INT8 ? 0 : 128;
    for (int64_t m = 0; m < M; m++) {
        int32_t z = zp_at(zw, m) - wshift;
        uint32_t b = bias ? (uint32_t)((const int32_t *)bias->data)[m] : 0;
        r->row_add[m] = (int32_t)(b - (uint32_t)side.zx * (uint32_t)wsum[m] +
                                  (uint32_t)K * (uint32_t)side.zx * (uint32_t)z);
        r->row_zw[m] = z;
        any_zw |= z != 0;
        if (sx)
            r->mult[m] = quant_multiplier(scale_at(sx, 0), scale_at(sw, m), sy);
    }
    return any_zw;
}

static QGemmEpi qepi(const QRows *r, bool any_zw, const KernelCtx *k, const Tensor *sy, const Tensor *zy)
{
    QGemmEpi e = {.row_add = r->row_add, .row_zw = any_zw ? r->row_zw : NULL, .out = QOUT_I32};
    if (sy) {
        float s = scale_at(sy, 0);
        e.zy = zp_at(zy, 0);
        QuantRange qr = qout_range(k->node, k->out[0]->dtype, s, e.zy);
        e.lo = qr.lo, e.hi = qr.hi, e.mult = r->mult;
        e.out = k->out[0]->dtype == CRUN_DTYPE_INT8 ? QOUT_S8 : QOUT_U8;
    }
    return e;
}

/* ================= convolutions ================= */

static bool uses_phases(const ConvGeom *g) { return !conv_is_pointwise(g) && g->w.s[2] > 1; }

static size_t phased_bytes(const ConvGeom *g)
{
    if (!uses_phases(g))
        return 0;
    return align64((size_t)(g->C * g->w.in[0] * g->w.in[1]) * (size_t)(g->w.s[2] * ((g->w.in[2] + g->w.s[2] - 1) / g->w.s[2])));
}

bool qconv_packed_applies(const PrepCtx *c, const void *kdata)
{
    if (!qpacked_isa_ok(kdata))
        return false;
    const QConvIO *io = ((const QPackedKernel *)kdata)->io;
    if (!c->in[io->w]->data)
        return false;
    ConvGeom g;
    conv_geom_known(c->params, c->in[io->x], c->in[io->w], &g);
    /* One output channel per group (depthwise) would waste whole strips. */
    return g.Mg >= 2;
}

static QGemmArgs qconv_args(const QPackState *s, const ConvGeom *g, const QGemmEpi *e)
{
    return (QGemmArgs){.M = g->Mg, .N = g->w.out_vol, .K = g->Cg * g->w.k_vol, .uk = s->uk, .epi = *e,
                       .rs = g->w.out_vol, .cs = 1};
}

crun_status qconv_packed_prepare(PrepCtx *c)
{
    const QConvIO *io = ((const QPackedKernel *)c->kdata)->io;
    ConvGeom g;
    conv_geom_known(c->params, c->in[io->x], c->in[io->w], &g);
    int64_t K = g.Cg * g.w.k_vol;
    QWeights q = {c->in[io->w], g.G, g.Mg, K, K, 1, g.Mg * K};
    crun_status st = qpack_prepare(c, &q);
    if (st != CRUN_OK)
        return st;
    QGemmEpi e = {0};
    QGemmArgs ga = qconv_args(c->state, &g, &e);
    c->ws_bytes = qrows_bytes(g.M) + phased_bytes(&g) + qgemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

/* im2col on 8-bit data: B[k][p] = x[c][iz][iy][ix] for k = (c, kz, ky, kx) and output
 * position p, the zero point in the padding. */
typedef struct QIm2col {
    const WindowGeom *w;
    const uint8_t *x;      /* first channel of this image and group */
    const uint8_t *phased; /* for column strides s > 1: x with each row split into phases */
    uint8_t pad;           /* the raw zero point: (pad - zx) is 0 */
} QIm2col;

/* With stride s > 1 an im2col row reads every s-th column. The image is first copied with
 * each input row split into s phases (phase p: columns p, p + s, ...; phase_w each), so
 * those reads become contiguous copies. */
static int64_t phase_w(const WindowGeom *w) { return (w->in[2] + w->s[2] - 1) / w->s[2]; }

static int64_t phased_row_bytes(const WindowGeom *w) { return w->s[2] * phase_w(w); }

typedef struct PhaseJob {
    const WindowGeom *w;
    const uint8_t *x;
    uint8_t *dst;
} PhaseJob;

static void phase_split_channel(void *ctx, int64_t c, int thread)
{
    (void)thread;
    const PhaseJob *j = ctx;
    const WindowGeom *w = j->w;
    int64_t rows = w->in[0] * w->in[1], W = w->in[2], s = w->s[2], pw = phase_w(w);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = j->x + c * w->in_vol + r * W;
        uint8_t *d = j->dst + (c * rows + r) * phased_row_bytes(w);
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; p + i * s < W; i++)
                d[p * pw + i] = src[p + i * s];
    }
}

/* A run of columns that read one output row: first column (relative to the block), the
 * output row's first input row and plane, its first output column, its length. */
typedef struct QPiece {
    int64_t dst, iy0, iz0, ox0, n;
} QPiece;

static int qim2col_pieces(const WindowGeom *w, int64_t n0, int64_t nc, QPiece *pc)
{
    int64_t OW = w->out[2], OH = w->out[1], ox = n0 % OW, t = n0 / OW;
    int np = 0;
    for (int64_t col = n0; col < n0 + nc;) {
        int64_t n = CRUN_MIN(OW - ox, n0 + nc - col);
        pc[np++] = (QPiece){col - n0, (t % OH) * w->s[1] - w->pb[1], (t / OH) * w->s[0] - w->pb[0], ox, n};
        col += n;
        ox = 0;
        t++;
    }
    return np;
}

/* Row (c, kz, ky, kx) of B over the pieces, the zero point in the padding. */
static void qim2col_row(const QIm2col *s, const QPiece *pc, int np, int64_t c, int64_t kz, int64_t ky, int64_t kx,
                        uint8_t *dst)
{
    const WindowGeom *w = s->w;
    const uint8_t *plane = s->x + c * w->in_vol;
    int64_t W = w->in[2], sx = w->s[2], off = kx * w->d[2] - w->pb[2];
    for (int p = 0; p < np; p++) {
        int64_t iy = pc[p].iy0 + ky * w->d[1], iz = pc[p].iz0 + kz * w->d[0], run = pc[p].n;
        uint8_t *d = dst + pc[p].dst;
        if (iy < 0 || iy >= w->in[1] || iz < 0 || iz >= w->in[0]) {
            memset(d, s->pad, (size_t)run);
            continue;
        }
        int64_t base = pc[p].ox0 * sx + off;
        /* Columns [lo, hi) read inside the row; the padding around them. */
        int64_t lo = base >= 0 ? 0 : (-base + sx - 1) / sx, hi = W - base <= 0 ? 0 : (W - base + sx - 1) / sx;
        lo = CRUN_MIN(lo, run);
        hi = CRUN_MAX(lo, CRUN_MIN(hi, run));
        for (int64_t i = 0; i < lo; i++)
            d[i] = s->pad;
        if (sx == 1) {
            memcpy(d + lo, plane + (iz * w->in[1] + iy) * W + base + lo, (size_t)(hi - lo));
        } else if (hi > lo) { /* columns ix0, ix0 + sx, ...: consecutive in ix0's phase */
            int64_t ix0 = base + lo * sx;
            const uint8_t *prow = s->phased + ((c * w->in[0] + iz) * w->in[1] + iy) * phased_row_bytes(w);
            memcpy(d + lo, prow + (ix0 % sx) * phase_w(w) + ix0 / sx, (size_t)(hi - lo));
        }
        for (int64_t i = hi; i < run; i++)
            d[i] = s->pad;
    }
}

static void qpack_b_im2col(const void *src, int64_t K, int64_t n0, int64_t nc, const QGemmUkernel *uk, uint8_t flip,
                           uint8_t *dst, int32_t *col_sum)
{
    const QIm2col *s = src;
    const WindowGeom *w = s->w;
    uint8_t rows[4][QGEMM_NC_MAX];
    QPiece pieces[QGEMM_NC_MAX + 1];
    assert(nc <= QGEMM_NC_MAX);
    int np = qim2col_pieces(w, n0, nc, pieces);
    int64_t kq = qgemm_quads(K), c = 0, kz = 0, ky = 0, kx = 0;
    for (int64_t q = 0; q < kq; q++) {
        const uint8_t *r[4];
        for (int t = 0; t < 4; t++) {
            r[t] = NULL;
            if (4 * q + t >= K)
                continue;
            qim2col_row(s, pieces, np, c, kz, ky, kx, rows[t]);
            r[t] = rows[t];
            conv_next_tap(w, &c, &kz, &ky, &kx);
        }
        qgemm_pack_quad(r, nc, uk, kq, q, flip, dst, col_sum);
    }
    qgemm_pack_tail(nc, uk->nr, kq, dst);
}

crun_status qconv_packed_run(KernelCtx *k)
{
    const QConvIO *io = ((const QPackedKernel *)k->kdata)->io;
    const QPackState *s = k->state;
    const Tensor *x = k->in[io->x], *w = k->in[io->w];
    ConvGeom g;
    conv_geom_known(k->params, x, w, &g);
    int64_t K = g.Cg * g.w.k_vol;
    const Tensor *zx = opt(k->in, k->n_in, io->zx), *sy = opt(k->in, k->n_in, io->sy);
    QSide side = qside(s->uk, x, zx);
    QRows r = qrows_at(k->ws, g.M);
    bool any_zw = qrows_fill(&r, g.M, K, s->wsum, w, opt(k->in, k->n_in, io->zw), side, opt(k->in, k->n_in, io->bias),
                             opt(k->in, k->n_in, io->sx), opt(k->in, k->n_in, io->sw), sy ? scale_at(sy, 0) : 1.0f);
    QGemmEpi e = qepi(&r, any_zw, k, sy, opt(k->in, k->n_in, io->zy));
    size_t esz = e.out == QOUT_I32 ? 4 : 1;
    uint8_t *phased = (uint8_t *)k->ws + qrows_bytes(g.M);
    void *gemm_ws = phased + phased_bytes(&g);
    bool pointwise = conv_is_pointwise(&g);
    for (int64_t n = 0; n < g.N; n++) {
        if (uses_phases(&g)) {
            PhaseJob pj = {&g.w, (const uint8_t *)x->data + n * g.C * g.w.in_vol, phased};
            pool_for(k->pool, g.C, phase_split_channel, &pj);
        }
        for (int64_t grp = 0; grp < g.G; grp++) {
            const uint8_t *xg = (const uint8_t *)x->data + (n * g.C + grp * g.Cg) * g.w.in_vol;
            QGemmMatrix xm = {xg, g.w.in_vol};
            QIm2col ic = {&g.w, xg, phased + grp * g.Cg * g.w.in[0] * g.w.in[1] * phased_row_bytes(&g.w),
                          (uint8_t)zp_at(zx, 0)};
            QGemmArgs ga = qconv_args(s, &g, &e);
            int64_t m0 = grp * g.Mg;
            ga.epi.row_add += m0;
            ga.epi.row_zw = ga.epi.row_zw ? ga.epi.row_zw + m0 : NULL;
            ga.epi.mult = ga.epi.mult ? ga.epi.mult + m0 : NULL;
            ga.a_packed = (const int8_t *)((const char *)s->packed + s->group_stride * (size_t)grp);
            ga.pack_b = pointwise ? qgemm_pack_b_kn : qpack_b_im2col;
            ga.b_src = pointwise ? (const void *)&xm : (const void *)&ic;
            ga.b_flip = side.flip;
            ga.c = (char *)k->out[0]->data + (size_t)((n * g.M + m0) * g.w.out_vol) * esz;
            qgemm_run(&ga, gemm_ws, k->pool);
        }
    }
    return CRUN_OK;
}

/* ================= matrix products ================= */

/* Constant 2-D B (the weights), and A quantized per tensor (a per-row A scale would be a
 * per-column one here, which the epilogue does not take). */
bool qmatmul_packed_applies(const PrepCtx *c, const void *kdata)
{
    if (!qpacked_isa_ok(kdata))
        return false;
    const QMatMulIO *io = ((const QPackedKernel *)kdata)->io;
    const Tensor *a = c->in[io->a], *b = c->in[io->b];
    const Tensor *za = opt(c->in, c->n_in, io->za), *sa = opt(c->in, c->n_in, io->sa);
    return b->data && b->rank == 2 && b->dims[0] > 0 && a->rank >= 1 && (!za || tensor_numel(za) == 1) &&
           (!sa || tensor_numel(sa) == 1);
}

crun_status qmatmul_packed_prepare(PrepCtx *c)
{
    const QMatMulIO *io = ((const QPackedKernel *)c->kdata)->io;
    const Tensor *a = c->in[io->a], *b = c->in[io->b];
    int64_t K = b->dims[0], N = b->dims[1], T = tensor_numel(a) / (K > 0 ? K : 1);
    QWeights q = {b, 1, N, K, 1, N, 0};
    crun_status st = qpack_prepare(c, &q);
    if (st != CRUN_OK)
        return st;
    QGemmArgs ga = {.M = N, .N = T, .K = K, .uk = ((const QPackState *)c->state)->uk};
    c->ws_bytes = qrows_bytes(N) + qgemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

crun_status qmatmul_packed_run(KernelCtx *k)
{
    const QMatMulIO *io = ((const QPackedKernel *)k->kdata)->io;
    const QPackState *s = k->state;
    const Tensor *a = k->in[io->a], *b = k->in[io->b];
    int64_t K = b->dims[0], N = b->dims[1], T = K > 0 ? tensor_numel(a) / K : 0;
    const Tensor *za = opt(k->in, k->n_in, io->za), *sy = opt(k->in, k->n_in, io->sy);
    QSide side = qside(s->uk, a, za);
    QRows r = qrows_at(k->ws, N);
    bool any_zw = qrows_fill(&r, N, K, s->wsum, b, opt(k->in, k->n_in, io->zb), side, opt(k->in, k->n_in, io->bias),
                             opt(k->in, k->n_in, io->sa), opt(k->in, k->n_in, io->sb), sy ? scale_at(sy, 0) : 1.0f);
    QGemmEpi e = qepi(&r, any_zw, k, sy, opt(k->in, k->n_in, io->zy));
    QGemmMatrix am = {a->data, K};
    /* Rows of the product are B's columns, its columns A's rows: y[t][n] at n + t * N. */
    QGemmArgs ga = {.M = N, .N = T, .K = K, .uk = s->uk, .a_packed = s->packed, .pack_b = qgemm_pack_b_nk,
                    .b_src = &am, .b_flip = side.flip, .epi = e, .c = k->out[0]->data, .rs = 1, .cs = N};
    qgemm_run(&ga, (char *)k->ws + qrows_bytes(N), k->pool);
    return CRUN_OK;
}

/* ================= depthwise convolution (one channel per group) ================= */

bool qconv_dw_applies(const PrepCtx *c, const void *kdata)
{
    const QConvIO *io = ((const QPackedKernel *)kdata)->io;
    const Tensor *x = c->in[io->x];
    ConvGeom g;
    conv_geom_known(c->params, x, c->in[io->w], &g);
    /* (at most 1024 taps: the int32 sums of products of 9-bit values cannot overflow) */
    return g.Cg == 1 && g.Mg == 1 && x->rank == 4 && g.w.d[1] == 1 && g.w.d[2] == 1 && g.w.k_vol <= 1024;
}

/* The padded plane, as int16 (x - zx) with 0 in the padding, and one row of sums. */
static int64_t dw_padded_w(const WindowGeom *w) { return w->in[2] + w->pb[2] + w->pe[2]; }
static int64_t dw_padded_h(const WindowGeom *w) { return w->in[1] + w->pb[1] + w->pe[1]; }

static size_t dw_scratch(const WindowGeom *w)
{
    return align64((size_t)(dw_padded_w(w) * dw_padded_h(w)) * sizeof(int16_t)) +
           align64((size_t)w->out[2] * sizeof(int32_t));
}

crun_status qconv_dw_prepare(PrepCtx *c)
{
    const QConvIO *io = ((const QPackedKernel *)c->kdata)->io;
    ConvGeom g;
    conv_geom_known(c->params, c->in[io->x], c->in[io->w], &g);
    c->ws_bytes = qrows_bytes(g.M) + dw_scratch(&g.w) * (size_t)c->n_threads;
    return CRUN_OK;
}

typedef struct DwJob {
    const KernelCtx *k;
    const ConvGeom *g;
    const Tensor *x, *w, *bias;
    const int32_t *zw; /* per channel, as stored */
    const QGemmEpi *e; /* mult per channel; row terms set per channel */
    int32_t zx;
    bool xs, ws;
} DwJob;

static void dw_pad_plane(const DwJob *j, const uint8_t *x, int16_t *p)
{
    const WindowGeom *w = &j->g->w;
    int64_t PW = dw_padded_w(w);
    memset(p, 0, (size_t)(PW * dw_padded_h(w)) * sizeof *p);
    for (int64_t iy = 0; iy < w->in[1]; iy++) {
        int16_t *d = p + (iy + w->pb[1]) * PW + w->pb[2];
        const uint8_t *row = x + iy * w->in[2];
        if (j->xs)
            for (int64_t ix = 0; ix < w->in[2]; ix++)
                d[ix] = (int16_t)((int8_t)row[ix] - j->zx);
        else
            for (int64_t ix = 0; ix < w->in[2]; ix++)
                d[ix] = (int16_t)(row[ix] - j->zx);
    }
}

/* One channel of one image: sums of products tap by tap over each output row (loops the
 * compiler vectorizes for stride 1), then the epilogue of the packed kernels. */
static void dw_channel(void *ctx, int64_t t, int thread)
{
    const DwJob *j = ctx;
    const ConvGeom *g = j->g;
    const WindowGeom *w = &g->w;
    int64_t m = t % g->M, PW = dw_padded_w(w), OW = w->out[2];
    char *ws = (char *)j->k->ws + qrows_bytes(g->M) + dw_scratch(w) * (size_t)thread;
    int16_t *p = (int16_t *)ws;
    int32_t *acc = (int32_t *)(ws + align64((size_t)(PW * dw_padded_h(w)) * sizeof(int16_t)));
    dw_pad_plane(j, (const uint8_t *)j->x->data + t * w->in_vol, p);
    const uint8_t *wm = (const uint8_t *)j->w->data + m * w->k_vol;
    int32_t zw = j->zw[m];
    size_t esz = j->e->out == QOUT_I32 ? 4 : 1;
    char *y = (char *)j->k->out[0]->data + (size_t)(t * w->out_vol) * esz;
    QGemmEpi e = *j->e;
    int32_t bias = j->bias ? ((const int32_t *)j->bias->data)[m] : 0;
    e.row_add = &bias; /* the plane holds x - zx and the taps w - zw: no other terms */
    e.row_zw = NULL;
    e.mult = e.mult ? e.mult + m : NULL;
    for (int64_t oy = 0; oy < w->out[1]; oy++) {
        memset(acc, 0, (size_t)OW * sizeof *acc);
        for (int64_t ky = 0; ky < w->k[1]; ky++) {
            const int16_t *row = p + (oy * w->s[1] + ky) * PW;
            for (int64_t kx = 0; kx < w->k[2]; kx++) {
                int32_t wv = (j->ws ? (int32_t)(int8_t)wm[ky * w->k[2] + kx] : (int32_t)wm[ky * w->k[2] + kx]) - zw;
                const int16_t *src = row + kx;
                if (w->s[2] == 1)
                    for (int64_t ox = 0; ox < OW; ox++)
                        acc[ox] += wv * src[ox];
                else
                    for (int64_t ox = 0; ox < OW; ox++)
                        acc[ox] += wv * src[ox * w->s[2]];
            }
        }
        qgemm_store_tile(acc, (int)OW, &e, y + (size_t)(oy * OW) * esz, 0, 1, 1, (int)OW);
    }
}

/* The per-channel terms of a depthwise convolution: each channel's weight zero point as
 * stored (its taps are widened with it) and, when requantizing (sx not NULL), the
 * multiplier sx * sw[m] / sy. */
static QRows dw_rows_fill(void *ws, int64_t M, const Tensor *zw, const Tensor *sx, const Tensor *sw, const Tensor *sy)
{
    QRows r = qrows_at(ws, M);
    for (int64_t m = 0; m < M; m++) {
        r.row_zw[m] = zp_at(zw, m);
        if (sx)
            r.mult[m] = quant_multiplier(scale_at(sx, 0), scale_at(sw, m), scale_at(sy, 0));
    }
    return r;
}

crun_status qconv_dw_run(KernelCtx *k)
{
    const QConvIO *io = ((const QPackedKernel *)k->kdata)->io;
    const Tensor *x = k->in[io->x], *w = k->in[io->w];
    ConvGeom g;
    conv_geom_known(k->params, x, w, &g);
    const Tensor *sy = opt(k->in, k->n_in, io->sy);
    QRows r = dw_rows_fill(k->ws, g.M, opt(k->in, k->n_in, io->zw), opt(k->in, k->n_in, io->sx),
                           opt(k->in, k->n_in, io->sw), sy);
    QGemmEpi e = qepi(&r, false, k, sy, opt(k->in, k->n_in, io->zy));
    DwJob j = {k, &g, x, w, opt(k->in, k->n_in, io->bias), r.row_zw, &e, zp_at(opt(k->in, k->n_in, io->zx), 0),
               x->dtype == CRUN_DTYPE_INT8, w->dtype == CRUN_DTYPE_INT8};
    pool_for(k->pool, g.N * g.M, dw_channel, &j);
    return CRUN_OK;
}

/* ---- depthwise QLinearConv through the float SIMD window kernels ----
 * The plane holds x - zx and the taps w - zw as floats: integers of at most 9 bits, whose
 * products and sums of up to 256 of them (the window kernels take at most 7x7) are exact
 * in float whatever the order, so the float kernel computes the integer sums exactly and
 * the result is bit for bit the reference's. */

KV_SIMD_ONLY bool qconv_dw_simd_applies(const PrepCtx *c, const void *kdata)
{
    (void)kdata;
    ConvGeom g;
    conv_geom_known(c->params, c->in[0], c->in[3], &g);
    WindowPlane wp;
    return g.Cg == 1 && g.Mg == 1 && c->in[0]->rank == 4 && window_plane_init(&g.w, &wp);
}

static size_t dwf_out_bytes(const WindowGeom *w) { return align64((size_t)w->out_vol * sizeof(float)); }

static size_t dwf_scratch(const WindowGeom *w)
{
    return window_plane_scratch_bytes(w) + dwf_out_bytes(w) + align64(64 * sizeof(float));
}

KV_SIMD_ONLY crun_status qconv_dw_simd_prepare(PrepCtx *c)
{
    ConvGeom g;
    conv_geom_known(c->params, c->in[0], c->in[3], &g);
    c->ws_bytes = qrows_bytes(g.M) + dwf_scratch(&g.w) * (size_t)c->n_threads;
    return CRUN_OK;
}

typedef struct DwfJob {
    const KernelCtx *k;
    const ConvGeom *g;
    const WindowUkernels *uk;
    const QRows *r;
    QuantRange range;
    int32_t zx, zy;
    bool xs, ws;
} DwfJob;

#define DWF_LOADS(T)                                                                          \
    static void dwf_load_##T(float *restrict d, const T *restrict s, int64_t n, int32_t z)   \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            d[i] = (float)((int32_t)s[i] - z);                                                \
    }
DWF_LOADS(uint8_t)
DWF_LOADS(int8_t)

/* acc (exact integers) + bias, requantized as qgemm_store_tile does. */
static void dwf_store(uint8_t *restrict y, const float *restrict acc, int64_t n, int32_t bias, float mult,
                      int32_t zy, QuantRange r)
{
    float lo = (float)(r.lo - zy), hi = (float)(r.hi - zy);
    for (int64_t i = 0; i < n; i++) {
        float v = (float)(int32_t)((uint32_t)(int32_t)acc[i] + (uint32_t)bias) * mult;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        y[i] = (uint8_t)((int32_t)quant_rint_small(v) + zy);
    }
}

static void dwf_channel(void *ctx, int64_t t, int thread)
{
    const DwfJob *j = ctx;
    const WindowGeom *w = &j->g->w;
    int64_t m = t % j->g->M;
    char *ws = (char *)j->k->ws + qrows_bytes(j->g->M) + dwf_scratch(w) * (size_t)thread;
    float *out = (float *)ws, *taps = (float *)(ws + dwf_out_bytes(w));
    float *scratch = (float *)((char *)taps + align64(64 * sizeof(float)));
    const void *wm = (const uint8_t *)j->k->in[3]->data + m * w->k_vol;
    if (j->ws)
        dwf_load_int8_t(taps, wm, w->k_vol, j->r->row_zw[m]);
    else
        dwf_load_uint8_t(taps, wm, w->k_vol, j->r->row_zw[m]);
    WindowPlane wp;
    window_plane_init(w, &wp);
    wp.x = NULL; /* the kernel reads the bytes as x - zx while it pads the plane */
    wp.xq = (const uint8_t *)j->k->in[0]->data + t * w->in_vol;
    wp.zq = j->zx;
    wp.xq_signed = j->xs;
    wp.y = out;
    wp.w = taps;
    wp.bias = 0.0f;
    wp.lo = -INFINITY;
    wp.hi = INFINITY;
    wp.scratch = scratch;
    j->uk->dwconv(&wp);
    const Tensor *bias = j->k->n_in > 8 ? j->k->in[8] : NULL;
    dwf_store((uint8_t *)j->k->out[0]->data + t * w->out_vol, out, w->out_vol,
              bias ? ((const int32_t *)bias->data)[m] : 0, j->r->mult[m], j->zy, j->range);
}

KV_SIMD_ONLY crun_status qconv_dw_simd_run(KernelCtx *k)
{
    ConvGeom g;
    conv_geom_known(k->params, k->in[0], k->in[3], &g);
    /* QLinearConv's inputs: x, sx, zx, w, sw, zw, sy, zy, bias */
    QRows r = dw_rows_fill(k->ws, g.M, k->in[5], k->in[1], k->in[4], k->in[6]);
    float sy = scale_at(k->in[6], 0);
    int32_t zy = zp_at(k->in[7], 0);
    DwfJob j = {k, &g, k->kdata, &r, qout_range(k->node, k->out[0]->dtype, sy, zy), zp_at(k->in[2], 0), zy,
                k->in[0]->dtype == CRUN_DTYPE_INT8, k->in[3]->dtype == CRUN_DTYPE_INT8};
    pool_for(k->pool, g.N * g.M, dwf_channel, &j);
    return CRUN_OK;
}
