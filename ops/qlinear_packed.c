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

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

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

/* Shape of the weights as GEMM rows: M rows of K in G groups; (m, k) at sm, sk. With taps
 * set, a convolution's weights [M][cg][taps] in quad order instead (see QQuads; K counts
 * the padding channels). */
typedef struct QWeights {
    const Tensor *w;
    int64_t G, Mg, K, sm, sk, gstride; /* gstride: elements between groups' first rows */
    int64_t cg, taps;
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

/* qgemm_pack_a for a convolution's weights with k in quad order: k = (channel quad, tap,
 * channel in the quad); channels past cg pack as 0. */
static void qpack_a_quads(const QGemmUkernel *uk, const QWeights *q, const uint8_t *w, int8_t *dst, int32_t *wsum)
{
    uint8_t flip = q->w->dtype == CRUN_DTYPE_INT8 ? 0 : 0x80;
    int64_t kq = qgemm_quads(q->K), mr = uk->mr;
    memset(dst, 0, qgemm_packed_a_bytes(uk, q->Mg, q->K));
    for (int64_t m = 0; m < q->Mg; m++) {
        int8_t *strip = dst + (m / mr) * kq * mr * 4 + (m % mr) * 4;
        int32_t sum = 0;
        for (int64_t c = 0; c < q->cg; c++)
            for (int64_t t = 0; t < q->taps; t++) {
                int8_t v = (int8_t)(w[(m * q->cg + c) * q->taps + t] ^ flip);
                strip[((c / 4) * q->taps + t) * mr * 4 + c % 4] = v;
                sum += v;
            }
        wsum[m] = sum;
    }
}

static void fill_qpack(const void *ctx, void *dst)
{
    const QPackCtx *p = ctx;
    size_t gs;
    qpack_bytes(p, &gs);
    int32_t *wsum = (int32_t *)((char *)dst + gs * (size_t)p->q.G);
    for (int64_t g = 0; g < p->q.G; g++) {
        const uint8_t *w = (const uint8_t *)p->q.w->data + g * p->q.gstride;
        int8_t *a = (int8_t *)((char *)dst + gs * (size_t)g);
        if (p->q.taps)
            qpack_a_quads(p->uk, &p->q, w, a, wsum + g * p->q.Mg);
        else
            qgemm_pack_a(p->uk, w, p->q.w->dtype == CRUN_DTYPE_INT8, p->q.Mg, p->q.K, p->q.sm, p->q.sk, a,
                         wsum + g * p->q.Mg);
    }
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

/* A pointwise convolution reads its input planes as B. Every other one first makes a quad
 * image of the input (one image and group at a time): each 4 consecutive channels
 * interleaved into one dword per position, so a dword is one quad of k; padded so every
 * window lies inside it (the padding, and the channels past Cg, hold the zero point);
 * each row split into s phases (phase p: columns p, p + s, ...) for the column stride s.
 * k runs in quad order, (channel quad, kz, ky, kx, channel in the quad), so the im2col of
 * one quad for a run of outputs along a row is a copy of consecutive dwords straight into
 * the packed strips. Padding entries add nothing: their activation is the zero point (the
 * weights there pack as 0, and K counts them, as the epilogue's zero-point terms need). */
typedef struct QQuads {
    const WindowGeom *w;
    int64_t cq, dp, hp; /* channel quads, padded planes, padded rows */
    int64_t pw, row;    /* dwords per phase, per padded row */
    const uint8_t *img;
} QQuads;

static int64_t channel_quads(const ConvGeom *g) { return (g->Cg + 3) / 4; }

static int64_t qconv_K(const ConvGeom *g) { return conv_is_pointwise(g) ? g->Cg : channel_quads(g) * 4 * g->w.k_vol; }

/* The padded size along axis a that every window reads inside. */
static int64_t padded_extent(const WindowGeom *w, int a)
{
    return (w->out[a] - 1) * w->s[a] + (w->k[a] - 1) * w->d[a] + 1;
}

static QQuads qquads_geom(const ConvGeom *g)
{
    const WindowGeom *w = &g->w;
    QQuads q = {w, channel_quads(g), padded_extent(w, 0), padded_extent(w, 1), 0, 0, NULL};
    q.pw = (padded_extent(w, 2) + w->s[2] - 1) / w->s[2];
    q.row = q.pw * w->s[2];
    return q;
}

/* Whether the quad image's sizes stay far from overflowing (huge pads or dilations make
 * huge padded extents: such convolutions take the reference kernels, which need none). */
static bool qquads_fit(const ConvGeom *g)
{
    const WindowGeom *w = &g->w;
    double bytes = 16.0 * (double)channel_quads(g);
    for (int a = 0; a < 3; a++)
        bytes *= (double)padded_extent(w, a) + (double)w->s[a];
    return bytes < 0x1p40;
}

static size_t qquads_bytes(const ConvGeom *g)
{
    if (conv_is_pointwise(g))
        return 0;
    QQuads q = qquads_geom(g);
    return align64((size_t)(q.cq * q.dp * q.hp * q.row) * 4);
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
    return g.Mg >= 2 && (conv_is_pointwise(&g) || qquads_fit(&g));
}

static QGemmArgs qconv_args(const QPackState *s, const ConvGeom *g, const QGemmEpi *e)
{
    return (QGemmArgs){.M = g->Mg, .N = g->w.out_vol, .K = qconv_K(g), .uk = s->uk, .epi = *e, .rs = g->w.out_vol,
                       .cs = 1};
}

crun_status qconv_packed_prepare(PrepCtx *c)
{
    const QConvIO *io = ((const QPackedKernel *)c->kdata)->io;
    ConvGeom g;
    conv_geom_known(c->params, c->in[io->x], c->in[io->w], &g);
    int64_t Kw = g.Cg * g.w.k_vol; /* elements per row of W */
    QWeights q = {c->in[io->w], g.G, g.Mg, qconv_K(&g), Kw, 1, g.Mg * Kw, 0, 0};
    if (!conv_is_pointwise(&g))
        q.cg = g.Cg, q.taps = g.w.k_vol;
    crun_status st = qpack_prepare(c, &q);
    if (st != CRUN_OK)
        return st;
    QGemmEpi e = {0};
    QGemmArgs ga = qconv_args(c->state, &g, &e);
    c->ws_bytes = qrows_bytes(g.M) + qquads_bytes(&g) + qgemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

typedef struct QQuadsJob {
    const QQuads *q;
    const uint8_t *x; /* the group's first input channel */
    int64_t Cg;
    uint8_t *dst;
    uint8_t pad, flip;  /* pad: the raw zero point */
    const uint8_t *end; /* the input tensor's end: a row's last vector may read up to it */
} QQuadsJob;

/* Dwords ix .. ix + 15 of a quad-image row: the four channels' bytes interleaved (a NULL
 * channel gives the zero point), flipped. */
static void interleave16(const QQuadsJob *j, const uint8_t *const r[4], int64_t ix, uint8_t *o)
{
#if defined(__SSE2__)
    __m128i fl = _mm_set1_epi8((char)j->flip), v[4];
    for (int t = 0; t < 4; t++)
        v[t] = _mm_xor_si128(r[t] ? _mm_loadu_si128((const __m128i *)(r[t] + ix)) : _mm_set1_epi8((char)j->pad), fl);
    __m128i a = _mm_unpacklo_epi8(v[0], v[1]), b = _mm_unpackhi_epi8(v[0], v[1]);
    __m128i c = _mm_unpacklo_epi8(v[2], v[3]), d = _mm_unpackhi_epi8(v[2], v[3]);
    _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(a, c));
    _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(a, c));
    _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(b, d));
    _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(b, d));
#elif defined(__ARM_NEON)
    uint8x16x4_t v;
    for (int t = 0; t < 4; t++)
        v.val[t] = veorq_u8(r[t] ? vld1q_u8(r[t] + ix) : vdupq_n_u8(j->pad), vdupq_n_u8(j->flip));
    vst4q_u8(o, v); /* stores the four registers interleaved byte by byte */
#else
    for (int i = 0; i < 16; i++)
        for (int t = 0; t < 4; t++)
            o[4 * i + t] = (uint8_t)((r[t] ? r[t][ix + i] : j->pad) ^ j->flip);
#endif
}

/* Row `at` (elements from each plane's start) of the four channels from x on, planes
 * in_vol apart; NULL for the channels past the n that exist. */
static void quad_rows(const uint8_t *x, int64_t n, int64_t in_vol, int64_t at, const uint8_t *r[4])
{
    for (int c = 0; c < 4; c++)
        r[c] = c < n ? x + c * in_vol + at : NULL;
}

/* One padded row of the quad image from the four channels' input rows (NULL: a channel
 * past Cg): the zero point, then the inside columns. A row's last columns read on into
 * the next row (the extra lanes are not stored) or, at the tensor's end, go through
 * copies. */
static void qquads_row(const QQuadsJob *j, const uint8_t *const r[4], uint8_t *d)
{
    const WindowGeom *w = j->q->w;
    int64_t W = CRUN_MIN(w->in[2], padded_extent(w, 2) - w->pb[2]), s = w->s[2], pw = j->q->pw;
    memset(d, (uint8_t)(j->pad ^ j->flip), (size_t)j->q->row * 4);
    for (int64_t ix = 0; ix < W; ix += 16) {
        int64_t m = CRUN_MIN(16, W - ix), at = ix, x = w->pb[2] + ix;
        uint8_t tail[4][16], o[64];
        const uint8_t *rt[4] = {r[0], r[1], r[2], r[3]};
        bool copy = false;
        for (int c = 0; c < 4; c++)
            copy |= r[c] && j->end - (r[c] + ix) < 16;
        if (copy)
            for (int c = 0; c < 4; c++)
                if (r[c]) {
                    memcpy(tail[c], r[c] + ix, (size_t)m);
                    rt[c] = tail[c], at = 0;
                }
        interleave16(j, rt, at, o);
        if (s == 1)
            memcpy(d + x * 4, o, (size_t)m * 4);
        else /* position x goes to phase x % s, index x / s: stepped, not divided */
            for (int64_t i = 0, ph = x % s, at_ph = x / s; i < m; i++) {
                memcpy(d + (ph * pw + at_ph) * 4, o + 4 * i, 4);
                if (++ph == s)
                    ph = 0, at_ph++;
            }
    }
}

/* Plane t = (channel quad, padded z) of the quad image. */
static void qquads_plane(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const QQuadsJob *j = ctx;
    const QQuads *q = j->q;
    const WindowGeom *w = q->w;
    int64_t cq = t / q->dp, iz = t % q->dp - w->pb[0];
    for (int64_t y = 0; y < q->hp; y++) {
        uint8_t *d = j->dst + (t * q->hp + y) * q->row * 4;
        int64_t iy = y - w->pb[1];
        if (iz < 0 || iz >= w->in[0] || iy < 0 || iy >= w->in[1]) {
            memset(d, (uint8_t)(j->pad ^ j->flip), (size_t)q->row * 4);
            continue;
        }
        const uint8_t *r[4];
        quad_rows(j->x + cq * 4 * w->in_vol, j->Cg - cq * 4, w->in_vol, (iz * w->in[1] + iy) * w->in[2], r);
        qquads_row(j, r, d);
    }
}

/* A run of columns of one output row inside one strip: its first column (relative to the
 * block), its length, and the dword of the quad image that tap (0, 0, 0) of channel quad 0
 * reads for it. */
typedef struct QPiece {
    int32_t col, n;
    int64_t base;
} QPiece;

/* Breaks columns [n0, n0 + nc) at output rows and strips (n0 is a multiple of nr): at most
 * nc pieces, as every break is between two columns. */
static int qquads_pieces(const QQuads *q, int nr, int64_t n0, int64_t nc, QPiece *pc)
{
    const WindowGeom *w = q->w;
    int64_t OW = w->out[2], OH = w->out[1], ox = n0 % OW, t = n0 / OW;
    int np = 0;
    for (int64_t col = n0; col < n0 + nc;) {
        int64_t n = CRUN_MIN(CRUN_MIN(OW - ox, n0 + nc - col), nr - (col - n0) % nr);
        int64_t oy = t % OH, oz = t / OH;
        pc[np++] = (QPiece){(int32_t)(col - n0), (int32_t)n, (oz * w->s[0] * q->hp + oy * w->s[1]) * q->row + ox};
        col += n;
        ox += n;
        if (ox == OW)
            ox = 0, t++;
    }
    return np;
}

/* The dword offset of tap (kz, ky, kx) of channel quad cq from a piece's base. */
static int64_t qquads_tap(const QQuads *q, int64_t cq, int64_t kz, int64_t ky, int64_t kx)
{
    const WindowGeom *w = q->w;
    int64_t x = kx * w->d[2];
    return ((cq * q->dp + kz * w->d[0]) * q->hp + ky * w->d[1]) * q->row + (x % w->s[2]) * q->pw + x / w->s[2];
}

static void copy_dwords(uint8_t *dst, const uint8_t *src, int64_t n)
{
    if (n == 32) /* a whole strip of the widest microkernels: a fixed-size copy */
        memcpy(dst, src, 128);
    else
        memcpy(dst, src, (size_t)n * 4);
}

static void qpack_b_quads(const void *src, int64_t K, int64_t n0, int64_t nc, const QGemmUkernel *uk, uint8_t flip,
                          uint8_t *dst, int32_t *col_sum)
{
    (void)flip; /* applied when the image was made */
    const QQuads *q = src;
    const WindowGeom *w = q->w;
    int nr = uk->nr;
    int64_t kq = qgemm_quads(K), strip_bytes = kq * nr * 4;
    QPiece pc[QGEMM_NC_MAX];
    assert(nc <= QGEMM_NC_MAX);
    int np = qquads_pieces(q, nr, n0, nc, pc);
    for (int p0 = 0, p1; p0 < np; p0 = p1) {
        int64_t strip = pc[p0].col / nr;
        for (p1 = p0; p1 < np && pc[p1].col / nr == strip; p1++)
            ;
        uint8_t *o = dst + strip * strip_bytes;
        for (int64_t cq = 0; cq < q->cq; cq++)
            for (int64_t kz = 0; kz < w->k[0]; kz++)
                for (int64_t ky = 0; ky < w->k[1]; ky++)
                    for (int64_t kx = 0; kx < w->k[2]; kx++, o += nr * 4) {
                        const uint8_t *img = q->img + qquads_tap(q, cq, kz, ky, kx) * 4;
                        for (int p = p0; p < p1; p++)
                            copy_dwords(o + (pc[p].col % nr) * 4, img + pc[p].base * 4, pc[p].n);
                    }
    }
    qgemm_pack_tail(nc, nr, kq, dst);
    if (col_sum)
        qgemm_col_sums(dst, nc, uk, kq, col_sum);
}

crun_status qconv_packed_run(KernelCtx *k)
{
    const QConvIO *io = ((const QPackedKernel *)k->kdata)->io;
    const QPackState *s = k->state;
    const Tensor *x = k->in[io->x], *w = k->in[io->w];
    ConvGeom g;
    conv_geom_known(k->params, x, w, &g);
    const Tensor *zx = opt(k->in, k->n_in, io->zx), *sy = opt(k->in, k->n_in, io->sy);
    QSide side = qside(s->uk, x, zx);
    QRows r = qrows_at(k->ws, g.M);
    bool any_zw = qrows_fill(&r, g.M, qconv_K(&g), s->wsum, w, opt(k->in, k->n_in, io->zw), side,
                             opt(k->in, k->n_in, io->bias), opt(k->in, k->n_in, io->sx), opt(k->in, k->n_in, io->sw),
                             sy ? scale_at(sy, 0) : 1.0f);
    QGemmEpi e = qepi(&r, any_zw, k, sy, opt(k->in, k->n_in, io->zy));
    size_t esz = e.out == QOUT_I32 ? 4 : 1;
    uint8_t *img = (uint8_t *)k->ws + qrows_bytes(g.M);
    void *gemm_ws = img + qquads_bytes(&g);
    bool pointwise = conv_is_pointwise(&g);
    QQuads qq = qquads_geom(&g);
    qq.img = img;
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t grp = 0; grp < g.G; grp++) {
            const uint8_t *xg = (const uint8_t *)x->data + (n * g.C + grp * g.Cg) * g.w.in_vol;
            QGemmMatrix xm = {xg, g.w.in_vol};
            if (!pointwise) {
                QQuadsJob j = {&qq, xg, g.Cg, img, (uint8_t)zp_at(zx, 0), side.flip,
                               (const uint8_t *)x->data + tensor_numel(x)};
                pool_for(k->pool, qq.cq * qq.dp, qquads_plane, &j);
            }
            QGemmArgs ga = qconv_args(s, &g, &e);
            int64_t m0 = grp * g.Mg;
            ga.epi.row_add += m0;
            ga.epi.row_zw = ga.epi.row_zw ? ga.epi.row_zw + m0 : NULL;
            ga.epi.mult = ga.epi.mult ? ga.epi.mult + m0 : NULL;
            ga.a_packed = (const int8_t *)((const char *)s->packed + s->group_stride * (size_t)grp);
            ga.pack_b = pointwise ? qgemm_pack_b_kn : qpack_b_quads;
            ga.b_src = pointwise ? (const void *)&xm : (const void *)&qq;
            ga.b_flip = side.flip;
            ga.c = (char *)k->out[0]->data + (size_t)((n * g.M + m0) * g.w.out_vol) * esz;
            qgemm_run(&ga, gemm_ws, k->pool);
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
    QWeights q = {b, 1, N, K, 1, N, 0, 0, 0};
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
    double plane = ((double)g.w.in[2] + (double)g.w.pb[2] + (double)g.w.pe[2]) *
                   ((double)g.w.in[1] + (double)g.w.pb[1] + (double)g.w.pe[1]);
    return g.Cg == 1 && g.Mg == 1 && x->rank == 4 && g.w.k_vol <= 1024 && plane < 0x1p36; /* (huge pads: reference) */
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
            const int16_t *row = p + (oy * w->s[1] + ky * w->d[1]) * PW;
            for (int64_t kx = 0; kx < w->k[2]; kx++) {
                int32_t wv = (j->ws ? (int32_t)(int8_t)wm[ky * w->k[2] + kx] : (int32_t)wm[ky * w->k[2] + kx]) - zw;
                const int16_t *src = row + kx * w->d[2];
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

/* ---- depthwise QLinearConv on the SIMD window kernels, four channels at once ----
 * Each task makes the quad plane of four channels (window.h: WindowQuads; the positions of
 * the padded, phase-split plane of QQuads, as floats q - zx) and hands it to the kernel,
 * which sums and requantizes exactly as the reference does (integers of at most 9 bits,
 * products and sums of at most 49 of them, are exact in float in any order). Lanes hold
 * channels as well as positions, so narrow planes (7 x 7) fill whole vectors. */

KV_SIMD_ONLY bool qconv_dw_simd_applies(const PrepCtx *c, const void *kdata)
{
    (void)kdata;
    ConvGeom g;
    conv_geom_known(c->params, c->in[0], c->in[3], &g);
    const WindowGeom *w = &g.w;
    return g.Cg == 1 && g.Mg == 1 && c->in[0]->rank == 4 && w->k[1] <= WINDOW_MAX_K && w->k[2] <= WINDOW_MAX_K &&
           w->s[2] <= WINDOW_MAX_S && qquads_fit(&g);
}

/* The quad plane's floats, with room for a vector read past its last position. */
static size_t dwq_plane_bytes(const ConvGeom *g)
{
    QQuads q = qquads_geom(g);
    return align64((size_t)(q.hp * q.row * 4 + 64) * sizeof(float));
}

static size_t dwq_scratch(const ConvGeom *g)
{
    return dwq_plane_bytes(g) + align64((size_t)g->w.k_vol * 4 * sizeof(float)) +
           align64((size_t)qquads_geom(g).row * 4);
}

KV_SIMD_ONLY crun_status qconv_dw_simd_prepare(PrepCtx *c)
{
    ConvGeom g;
    conv_geom_known(c->params, c->in[0], c->in[3], &g);
    c->ws_bytes = qrows_bytes(g.M) + dwq_scratch(&g) * (size_t)c->n_threads;
    return CRUN_OK;
}

typedef struct DwqJob {
    const KernelCtx *k;
    const ConvGeom *g;
    const WindowQuadsUkernel *uk;
    const QRows *r;
    QQuads q;
    QuantRange range;
    int32_t zx, zy;
    const uint8_t *x_end;
} DwqJob;

/* d[i] = b[i] - z as floats, b signed or not. */
static void widen_q8(float *restrict d, const uint8_t *restrict b, int64_t n, int32_t z, bool is_signed)
{
    if (is_signed)
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)((int32_t)(int8_t)b[i] - z);
    else
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)((int32_t)b[i] - z);
}

/* Padded row y of the quad plane of channels c0 .. c0 + 3 of image n, as floats q - zx:
 * made as the 8-bit GEMM's quad image rows are (in bytes), then widened. */
static void dwq_row(const DwqJob *j, int64_t n, int64_t c0, int64_t y, uint8_t *bytes, float *d)
{
    const WindowGeom *w = j->q.w;
    int64_t iy = y - w->pb[1], len = j->q.row * 4;
    if (iy < 0 || iy >= w->in[1]) {
        memset(d, 0, (size_t)len * sizeof *d);
        return;
    }
    const uint8_t *r[4];
    quad_rows((const uint8_t *)j->k->in[0]->data + (n * j->g->C + c0) * w->in_vol, j->g->C - c0, w->in_vol,
              iy * w->in[2], r);
    QQuadsJob ij = {&j->q, NULL, 0, NULL, (uint8_t)j->zx, 0, j->x_end};
    qquads_row(&ij, r, bytes);
    widen_q8(d, bytes, len, j->zx, j->k->in[0]->dtype == CRUN_DTYPE_INT8);
}

static void dwq_task(void *ctx, int64_t t, int thread)
{
    const DwqJob *j = ctx;
    const ConvGeom *g = j->g;
    const WindowGeom *w = &g->w;
    int64_t quads = (g->C + 3) / 4, n = t / quads, c0 = t % quads * 4;
    char *ws = (char *)j->k->ws + qrows_bytes(g->M) + dwq_scratch(g) * (size_t)thread;
    float *plane = (float *)ws, *taps = (float *)(ws + dwq_plane_bytes(g));
    uint8_t *bytes = (uint8_t *)taps + align64((size_t)w->k_vol * 4 * sizeof(float));
    for (int64_t y = 0; y < j->q.hp; y++)
        dwq_row(j, n, c0, y, bytes, plane + y * j->q.row * 4);
    memset(plane + j->q.hp * j->q.row * 4, 0, 64 * sizeof *plane);
    const Tensor *wt = j->k->in[3], *bias = j->k->n_in > 8 ? j->k->in[8] : NULL;
    WindowQuads q = {plane, {NULL}, w->out[1], w->out[2], j->q.row * 4, j->q.pw, (int)w->k[1], (int)w->k[2],
                     (int)w->s[1], (int)w->s[2], (int)w->d[1], (int)w->d[2], taps, NULL, NULL,
                     (float)(j->range.lo - j->zy), (float)(j->range.hi - j->zy), (float)j->zy};
    int32_t b4[4] = {0};
    float m4[4] = {0};
    for (int c = 0; c < 4; c++) {
        int64_t ch = c0 + c;
        if (ch >= g->C) { /* a channel past the last: no taps, no plane */
            for (int64_t k = 0; k < w->k_vol; k++)
                taps[k * 4 + c] = 0.0f;
            continue;
        }
        for (int64_t k = 0; k < w->k_vol; k++) {
            int64_t at = ch * w->k_vol + k;
            int32_t v = wt->dtype == CRUN_DTYPE_INT8 ? ((const int8_t *)wt->data)[at] : ((const uint8_t *)wt->data)[at];
            taps[k * 4 + c] = (float)(v - j->r->row_zw[ch]);
        }
        q.y[c] = (uint8_t *)j->k->out[0]->data + (n * g->C + ch) * w->out_vol;
        b4[c] = bias ? ((const int32_t *)bias->data)[ch] : 0;
        m4[c] = j->r->mult[ch];
    }
    q.bias = b4, q.mult = m4;
    j->uk->run(&q);
}

KV_SIMD_ONLY crun_status qconv_dw_simd_run(KernelCtx *k)
{
    ConvGeom g;
    conv_geom_known(k->params, k->in[0], k->in[3], &g);
    /* QLinearConv's inputs: x, sx, zx, w, sw, zw, sy, zy, bias */
    QRows r = dw_rows_fill(k->ws, g.M, k->in[5], k->in[1], k->in[4], k->in[6]);
    float sy = scale_at(k->in[6], 0);
    int32_t zy = zp_at(k->in[7], 0);
    DwqJob j = {k, &g, k->kdata, &r, qquads_geom(&g), qout_range(k->node, k->out[0]->dtype, sy, zy),
                zp_at(k->in[2], 0), zy, (const uint8_t *)k->in[0]->data + tensor_numel(k->in[0])};
    pool_for(k->pool, g.N * ((g.C + 3) / 4), dwq_task, &j);
    return CRUN_OK;
}
