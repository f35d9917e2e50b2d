/* qlinear.c - integer matrix products and convolutions on 8-bit operands:
 * MatMulInteger and ConvInteger (int32 results), QLinearMatMul and QLinearConv (results
 * requantized to 8 bits with quant/quant.h's arithmetic).
 *
 * Every product accumulates sum (a - za) * (b - zb) in 32 bits (wrapping, as unsigned
 * arithmetic, when a huge K overflows), so the order of the sum does not matter and
 * results are the same for any thread count. Zero points are
 * per tensor, or per row of A / per column of B / per output channel of W where ONNX
 * allows it. */
#include <stdio.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/qlinear.h"
#include "platforms/window.h"
#include "quant/quant.h"
#include "runtime/threadpool.h"


QuantRange qout_range(const Node *n, crun_dtype out, float sy, int32_t zy)
{
    QuantRange r = out == CRUN_DTYPE_INT8 ? QUANT_I8 : QUANT_U8;
    float lo, hi;
    act_as_clamp(&n->act, &lo, &hi);
    return quant_clamp_range(r, lo, hi, sy, zy);
}

static inline int32_t ld8(const void *p, int64_t i, bool is_signed)
{
    return is_signed ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
}

int32_t zp_at(const Tensor *z, int64_t i)
{
    if (!z)
        return 0;
    return (int32_t)tensor_get_int(z, tensor_numel(z) == 1 ? 0 : i);
}

float scale_at(const Tensor *s, int64_t i) { return ((const float *)s->data)[tensor_numel(s) == 1 ? 0 : i]; }

/* Checks an optional zero point (and scale) of operand `what`: numel 1 or `per` values. */
static crun_status check_q(InferCtx *c, const char *what, const Tensor *scale, const Tensor *zp, crun_dtype data_type,
                           int64_t per)
{
    if (scale) {
        NODE_CHECK(c, scale->dtype == CRUN_DTYPE_FLOAT, "%s's scale must be float (got %s)", what,
                   dtype_name(scale->dtype));
        NODE_CHECK(c, scale->rank <= 2 && (tensor_numel(scale) == 1 || tensor_numel(scale) == per),
                   "%s's scale must have 1 or %lld values (got %lld)", what, (long long)per,
                   (long long)tensor_numel(scale));
    }
    if (zp) {
        NODE_CHECK(c, zp->dtype == data_type, "%s's zero point is %s but %s is %s", what, dtype_name(zp->dtype), what,
                   dtype_name(data_type));
        NODE_CHECK(c, zp->rank <= 2 && (tensor_numel(zp) == 1 || tensor_numel(zp) == per),
                   "%s's zero point must have 1 or %lld values (got %lld)", what, (long long)per,
                   (long long)tensor_numel(zp));
    }
    return CRUN_OK;
}

static const Tensor *opt_in(const KernelCtx *k, int i) { return k->n_in > i ? k->in[i] : NULL; }
static const Tensor *opt_inf(const InferCtx *c, int i) { return c->n_in > i ? c->in[i] : NULL; }

/* How a kernel finishes an int32 accumulator row: stored as is, or requantized. */
typedef struct QOut {
    bool requant;
    const Tensor *bias;          /* int32 per output channel / column, or NULL */
    const Tensor *sa, *sb;       /* input scales */
    float sy;                    /* output scale */
    int32_t zy;
    QuantRange r;
} QOut;

/* Stores n accumulators of output channel/column-group `ch` (per-column scale when
 * col_scale, with column index col0 + j) at element offset off of y. */
static void store_row(const QOut *q, const uint32_t *acc, int64_t n, Tensor *y, int64_t off, int64_t row,
                      int64_t col0, bool col_scale)
{
    if (!q->requant) {
        memcpy((int32_t *)y->data + off, acc, (size_t)n * sizeof *acc);
        return;
    }
    float sa = scale_at(q->sa, row);
    bool sb_per = tensor_numel(q->sb) > 1;
    float mult = quant_multiplier(sa, scale_at(q->sb, col_scale ? col0 : row), q->sy);
    const int32_t *bias = q->bias ? q->bias->data : NULL;
    int32_t b = bias && !col_scale ? bias[row] : 0;
    for (int64_t j = 0; j < n; j++) {
        if (col_scale && sb_per)
            mult = quant_multiplier(sa, scale_at(q->sb, col0 + j), q->sy);
        if (bias && col_scale)
            b = bias[col0 + j];
        int32_t v = quant_requantize((int32_t)(acc[j] + (uint32_t)b), mult, q->zy, q->r);
        if (y->dtype == CRUN_DTYPE_INT8)
            ((int8_t *)y->data)[off + j] = (int8_t)v;
        else
            ((uint8_t *)y->data)[off + j] = (uint8_t)v;
    }
}

/* The packed kernels' entries, one per ISA, before the reference. */
#define QPACKED(op, fam, io, isa_id, suffix) \
    {op "_" suffix, isa_id, fam##_packed_applies, fam##_packed_prepare, fam##_packed_run, \
     &(const QPackedKernel){&io, isa_id}},
#define QPACKED_ALL(op, fam, io) \
    QPACKED(op, fam, io, ISA_AVX512VNNI, "avx512vnni") QPACKED(op, fam, io, ISA_AVX2, "avx2") \
    QPACKED(op, fam, io, ISA_NEONDOT, "neondot") QPACKED(op, fam, io, ISA_SCALAR, "packed")

/* ================= MatMulInteger, QLinearMatMul ================= */

static const QMatMulIO MATMUL_INTEGER_IO = {0, 1, 2, 3, -1, -1, -1, -1, -1};
/* Input 8, an int32 bias per column (scale a_scale * b_scale), is crun's extension: the QDQ
 * pass puts a Gemm's bias there. */
static const QMatMulIO QLINEAR_MATMUL_IO = {0, 3, 2, 5, 1, 4, 6, 7, 8};

static const Tensor *in_at_infer(const InferCtx *c, int i) { return i < 0 ? NULL : opt_inf(c, i); }
static const Tensor *in_at(const KernelCtx *k, int i) { return i < 0 ? NULL : opt_in(k, i); }

static crun_status qmatmul_infer_io(InferCtx *c, const QMatMulIO *io)
{
    const Tensor *a = c->in[io->a], *b = c->in[io->b];
    NODE_CHECK(c, is_8bit(a->dtype) && is_8bit(b->dtype), "A and B must be uint8 or int8 (got %s and %s)",
               dtype_name(a->dtype), dtype_name(b->dtype));
    MatMulShape s = {0};
    int64_t dims[2 * CRUN_MAX_RANK + 2];
    int r;
    char ta[96], tb[96];
    NODE_CHECK(c, a->rank + b->rank <= 2 * CRUN_MAX_RANK && matmul_shape(a, b, &s, dims, &r) && r <= CRUN_MAX_RANK,
               "cannot multiply %s by %s", shape_str(a->dims, a->rank, ta, sizeof ta),
               shape_str(b->dims, b->rank, tb, sizeof tb));
    crun_status st = check_q(c, "A", in_at_infer(c, io->sa), in_at_infer(c, io->za), a->dtype, s.M);
    if (st == CRUN_OK)
        st = check_q(c, "B", in_at_infer(c, io->sb), in_at_infer(c, io->zb), b->dtype, s.N);
    if (st != CRUN_OK)
        return st;
    crun_dtype out = CRUN_DTYPE_INT32;
    if (io->sy >= 0) {
        const Tensor *sy = c->in[io->sy], *zy = c->in[io->zy];
        NODE_CHECK(c, sy->dtype == CRUN_DTYPE_FLOAT && tensor_numel(sy) == 1, "y_scale must be one float");
        NODE_CHECK(c, is_8bit(zy->dtype) && tensor_numel(zy) == 1, "y_zero_point must be one uint8 or int8");
        const Tensor *bias = in_at_infer(c, io->bias);
        if (bias)
            NODE_CHECK(c, bias->dtype == CRUN_DTYPE_INT32 && tensor_numel(bias) == s.N,
                       "the bias must be int32 with %lld values", (long long)s.N);
        out = zy->dtype;
    }
    out_set(c->out[0], out, r, dims);
    return CRUN_OK;
}

static crun_status matmul_integer_infer(InferCtx *c) { return qmatmul_infer_io(c, &MATMUL_INTEGER_IO); }
static crun_status qlinear_matmul_infer(InferCtx *c) { return qmatmul_infer_io(c, &QLINEAR_MATMUL_IO); }

static int64_t qmatmul_flops_io(const Tensor *a, const Tensor *b)
{
    MatMulShape s = {0};
    int64_t dims[2 * CRUN_MAX_RANK + 2];
    int r;
    return matmul_shape(a, b, &s, dims, &r) ? 2 * s.n_batch * s.M * s.N * s.K : 0;
}

static int64_t matmul_integer_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    (void)n, (void)out;
    return qmatmul_flops_io(in[0], in[1]);
}

static int64_t qlinear_matmul_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    (void)n, (void)out;
    return qmatmul_flops_io(in[0], in[3]);
}

typedef struct QMatMulTask {
    const KernelCtx *k;
    const QMatMulIO *io;
    MatMulShape s;
    QOut q;
} QMatMulTask;

/* One output row: acc[j] = sum_k (a[m,k] - za[m]) * (b[k,j] - zb[j]). */
static void qmatmul_row(void *ctx, int64_t task, int thread)
{
    const QMatMulTask *t = ctx;
    const KernelCtx *k = t->k;
    const Tensor *a = k->in[t->io->a], *b = k->in[t->io->b];
    const Tensor *za = in_at(k, t->io->za), *zb = in_at(k, t->io->zb);
    const MatMulShape *s = &t->s;
    uint32_t *acc = (uint32_t *)k->ws + (size_t)thread * (size_t)s->N;
    int64_t batch = task / s->M, m = task % s->M, ao, bo;
    matmul_batch_offsets(s, batch, &ao, &bo);
    bool as = a->dtype == CRUN_DTYPE_INT8, bs = b->dtype == CRUN_DTYPE_INT8;
    int32_t zam = zp_at(za, m);
    memset(acc, 0, (size_t)s->N * sizeof *acc);
    for (int64_t kk = 0; kk < s->K; kk++) {
        int32_t av = ld8(a->data, ao + m * s->K + kk, as) - zam;
        if (av == 0)
            continue;
        int64_t row = bo + kk * s->N;
        if (zb && tensor_numel(zb) > 1) {
            for (int64_t j = 0; j < s->N; j++)
                acc[j] += (uint32_t)(av * (ld8(b->data, row + j, bs) - zp_at(zb, j)));
        } else {
            int32_t zbv = zp_at(zb, 0);
            if (bs)
                for (int64_t j = 0; j < s->N; j++)
                    acc[j] += (uint32_t)(av * (((const int8_t *)b->data)[row + j] - zbv));
            else
                for (int64_t j = 0; j < s->N; j++)
                    acc[j] += (uint32_t)(av * (((const uint8_t *)b->data)[row + j] - zbv));
        }
    }
    store_row(&t->q, acc, s->N, k->out[0], task * s->N, m, 0, true);
}

static crun_status qmatmul_prepare(PrepCtx *c)
{
    const QMatMulIO *io = c->kdata;
    MatMulShape s = {0};
    int64_t dims[2 * CRUN_MAX_RANK + 2];
    int r;
    matmul_shape(c->in[io->a], c->in[io->b], &s, dims, &r);
    c->ws_bytes = (size_t)c->n_threads * (size_t)s.N * sizeof(int32_t);
    return CRUN_OK;
}

static crun_status qmatmul_run(KernelCtx *k)
{
    const QMatMulIO *io = k->kdata;
    QMatMulTask t = {.k = k, .io = io};
    int64_t dims[2 * CRUN_MAX_RANK + 2];
    int r;
    matmul_shape(k->in[io->a], k->in[io->b], &t.s, dims, &r);
    if (io->sy >= 0) {
        t.q = (QOut){.requant = true, .bias = in_at(k, io->bias), .sa = k->in[io->sa], .sb = k->in[io->sb],
                     .sy = *(const float *)k->in[io->sy]->data, .zy = zp_at(k->in[io->zy], 0),
};
        t.q.r = qout_range(k->node, k->out[0]->dtype, t.q.sy, t.q.zy);
    }
    pool_for(k->pool, t.s.n_batch * t.s.M, qmatmul_row, &t);
    return CRUN_OK;
}

static const KernelVariant matmul_integer_kernels[] = {
    QPACKED_ALL("matmul_integer", qmatmul, MATMUL_INTEGER_IO)
    {"matmul_integer_ref", ISA_SCALAR, NULL, qmatmul_prepare, qmatmul_run, &MATMUL_INTEGER_IO},
    {0},
};

static const KernelVariant qlinear_matmul_kernels[] = {
    QPACKED_ALL("qlinear_matmul", qmatmul, QLINEAR_MATMUL_IO)
    {"qlinear_matmul_ref", ISA_SCALAR, NULL, qmatmul_prepare, qmatmul_run, &QLINEAR_MATMUL_IO},
    {0},
};

const OpDesc op_MatMulInteger = {"", "MatMulInteger", 2, 4, 1, 1, 0, NULL, matmul_integer_infer,
                                 matmul_integer_flops, matmul_integer_kernels};
const OpDesc op_QLinearMatMul = {"", "QLinearMatMul", 8, 9, 1, 1, 0, NULL, qlinear_matmul_infer,
                                 qlinear_matmul_flops, qlinear_matmul_kernels};

/* ================= ConvInteger, QLinearConv ================= */

static const QConvIO CONV_INTEGER_IO = {0, 1, 2, 3, -1, -1, -1, -1, -1};
static const QConvIO QLINEAR_CONV_IO = {0, 3, 2, 5, 1, 4, 6, 7, 8};

static crun_status parse_qconv(Node *n, Diag *d)
{
    ConvParams *p = params_alloc(n, sizeof *p, d);
    return p ? conv_params_parse(n, p, d) : d->status;
}

static crun_status qconv_infer_io(InferCtx *c, const QConvIO *io)
{
    const Tensor *x = c->in[io->x], *w = c->in[io->w];
    NODE_CHECK(c, is_8bit(x->dtype) && is_8bit(w->dtype), "X and W must be uint8 or int8 (got %s and %s)",
               dtype_name(x->dtype), dtype_name(w->dtype));
    ConvGeom g;
    char buf[160];
    const char *err = conv_geom(c->params, x, w, &g, buf, sizeof buf);
    NODE_CHECK(c, !err, "%s", err);
    crun_status st = check_q(c, "X", in_at_infer(c, io->sx), in_at_infer(c, io->zx), x->dtype, 1);
    if (st == CRUN_OK)
        st = check_q(c, "W", in_at_infer(c, io->sw), in_at_infer(c, io->zw), w->dtype, g.M);
    if (st != CRUN_OK)
        return st;
    crun_dtype out = CRUN_DTYPE_INT32;
    if (io->sy >= 0) {
        const Tensor *sy = c->in[io->sy], *zy = c->in[io->zy], *b = in_at_infer(c, io->bias);
        NODE_CHECK(c, sy->dtype == CRUN_DTYPE_FLOAT && tensor_numel(sy) == 1, "y_scale must be one float");
        NODE_CHECK(c, is_8bit(zy->dtype) && tensor_numel(zy) == 1, "y_zero_point must be one uint8 or int8");
        if (b)
            NODE_CHECK(c, b->dtype == CRUN_DTYPE_INT32 && tensor_numel(b) == g.M, "B must be int32 with %lld values",
                       (long long)g.M);
        out = zy->dtype;
    }
    int64_t dims[CRUN_MAX_RANK] = {g.N, g.M};
    for (int i = 0; i < g.w.nsp; i++)
        dims[2 + i] = g.w.out[3 - g.w.nsp + i];
    out_set(c->out[0], out, x->rank, dims);
    return CRUN_OK;
}

static crun_status conv_integer_infer(InferCtx *c) { return qconv_infer_io(c, &CONV_INTEGER_IO); }
static crun_status qlinear_conv_infer(InferCtx *c) { return qconv_infer_io(c, &QLINEAR_CONV_IO); }

static int64_t qconv_flops_io(const Node *n, const Tensor *x, const Tensor *w)
{
    ConvGeom g;
    char buf[160];
    return conv_geom(n->params, x, w, &g, buf, sizeof buf) ? 0 : 2 * g.N * g.M * g.w.out_vol * g.Cg * g.w.k_vol;
}

static int64_t conv_integer_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    (void)out;
    return qconv_flops_io(n, in[0], in[1]);
}

static int64_t qlinear_conv_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    (void)out;
    return qconv_flops_io(n, in[0], in[3]);
}

/* Output positions per task: the im2col block (Cg * k_vol rows of this many int32) stays
 * near 256 KiB, so it lives in cache while every output channel of the group reads it. */
static int64_t qconv_chunk(const ConvGeom *g)
{
    int64_t rows = g->Cg * g->w.k_vol, chunk = rows > 0 ? 65536 / rows : 65536;
    chunk = chunk < 16 ? 16 : chunk;
    return chunk < g->w.out_vol ? chunk : g->w.out_vol;
}

typedef struct QConvTask {
    const KernelCtx *k;
    const QConvIO *io;
    ConvGeom g;
    int64_t chunk, n_chunks;
    QOut q;
} QConvTask;

/* col[r][j] = x - zx at kernel row r (channel, kz, ky, kx) for output positions
 * [p0, p0 + np); 0 in the padding (the padding holds the zero point). */
static void qconv_im2col(const QConvTask *t, int64_t n, int64_t grp, int64_t p0, int64_t np, int32_t *col)
{
    const ConvGeom *g = &t->g;
    const WindowGeom *w = &g->w;
    const Tensor *x = t->k->in[t->io->x];
    bool xs = x->dtype == CRUN_DTYPE_INT8;
    int32_t zx = zp_at(in_at(t->k, t->io->zx), 0);
    int64_t r = 0;
    for (int64_t c = 0; c < g->Cg; c++) {
        int64_t plane = (n * g->C + grp * g->Cg + c) * w->in_vol;
        for (int64_t kz = 0; kz < w->k[0]; kz++)
            for (int64_t ky = 0; ky < w->k[1]; ky++)
                for (int64_t kx = 0; kx < w->k[2]; kx++, r++) {
                    int32_t *dst = col + r * np;
                    for (int64_t j = 0; j < np; j++) {
                        int64_t p = p0 + j, ox = p % w->out[2], oy = p / w->out[2] % w->out[1],
                                oz = p / (w->out[2] * w->out[1]);
                        int64_t iz = oz * w->s[0] - w->pb[0] + kz * w->d[0];
                        int64_t iy = oy * w->s[1] - w->pb[1] + ky * w->d[1];
                        int64_t ix = ox * w->s[2] - w->pb[2] + kx * w->d[2];
                        bool in = iz >= 0 && iz < w->in[0] && iy >= 0 && iy < w->in[1] && ix >= 0 && ix < w->in[2];
                        dst[j] = in ? ld8(x->data, plane + (iz * w->in[1] + iy) * w->in[2] + ix, xs) - zx : 0;
                    }
                }
    }
}

static void qconv_task(void *ctx, int64_t task, int thread)
{
    const QConvTask *t = ctx;
    const ConvGeom *g = &t->g;
    const Tensor *w = t->k->in[t->io->w], *zw = in_at(t->k, t->io->zw);
    bool ws = w->dtype == CRUN_DTYPE_INT8;
    int64_t rows = g->Cg * g->w.k_vol;
    int64_t chunk = task % t->n_chunks, grp = task / t->n_chunks % g->G, n = task / t->n_chunks / g->G;
    int64_t p0 = chunk * t->chunk, np = g->w.out_vol - p0 < t->chunk ? g->w.out_vol - p0 : t->chunk;
    int32_t *col = (int32_t *)t->k->ws + (size_t)thread * (size_t)(rows + 1) * (size_t)t->chunk;
    uint32_t *acc = (uint32_t *)(col + rows * t->chunk);
    qconv_im2col(t, n, grp, p0, np, col);
    for (int64_t m = grp * g->Mg; m < (grp + 1) * g->Mg; m++) {
        int32_t zwm = zp_at(zw, m);
        memset(acc, 0, (size_t)np * sizeof *acc);
        for (int64_t r = 0; r < rows; r++) {
            int32_t wv = ld8(w->data, m * rows + r, ws) - zwm;
            const int32_t *src = col + r * np;
            for (int64_t j = 0; wv && j < np; j++)
                acc[j] += (uint32_t)(wv * src[j]);
        }
        store_row(&t->q, acc, np, t->k->out[0], (n * g->M + m) * g->w.out_vol + p0, m, m, false);
    }
}

static crun_status qconv_prepare(PrepCtx *c)
{
    const QConvIO *io = c->kdata;
    ConvGeom g;
    conv_geom_known(c->params, c->in[io->x], c->in[io->w], &g);
    size_t per_thread = (size_t)(g.Cg * g.w.k_vol + 1) * (size_t)qconv_chunk(&g) * sizeof(int32_t);
    c->ws_bytes = (size_t)c->n_threads * per_thread;
    return CRUN_OK;
}

static crun_status qconv_run(KernelCtx *k)
{
    const QConvIO *io = k->kdata;
    QConvTask t = {.k = k, .io = io};
    conv_geom_known(k->params, k->in[io->x], k->in[io->w], &t.g);
    t.chunk = qconv_chunk(&t.g);
    if (t.chunk == 0)
        return CRUN_OK;
    t.n_chunks = (t.g.w.out_vol + t.chunk - 1) / t.chunk;
    if (io->sy >= 0) {
        /* Per output channel m: multiplier x_scale * w_scale[m] / y_scale (store_row with
         * row = m and the channel's scale from sb). */
        t.q = (QOut){.requant = true, .bias = in_at(k, io->bias), .sa = k->in[io->sx], .sb = k->in[io->sw],
                     .sy = *(const float *)k->in[io->sy]->data, .zy = zp_at(k->in[io->zy], 0),
};
        t.q.r = qout_range(k->node, k->out[0]->dtype, t.q.sy, t.q.zy);
    }
    pool_for(k->pool, t.g.N * t.g.G * t.n_chunks, qconv_task, &t);
    return CRUN_OK;
}

static const KernelVariant conv_integer_kernels[] = {
    QPACKED_ALL("conv_integer", qconv, CONV_INTEGER_IO)
    {"conv_integer_dw", ISA_SCALAR, qconv_dw_applies, qconv_dw_prepare, qconv_dw_run,
     &(const QPackedKernel){&CONV_INTEGER_IO, ISA_SCALAR}},
    {"conv_integer_ref", ISA_SCALAR, NULL, qconv_prepare, qconv_run, &CONV_INTEGER_IO},
    {0},
};

static const KernelVariant qlinear_conv_kernels[] = {
    QPACKED_ALL("qlinear_conv", qconv, QLINEAR_CONV_IO)
    KV_SIMD("qlinear_conv_dw", qconv_dw_simd_applies, qconv_dw_simd_prepare, qconv_dw_simd_run, window_q8_dw)
    {"qlinear_conv_dw", ISA_SCALAR, qconv_dw_applies, qconv_dw_prepare, qconv_dw_run,
     &(const QPackedKernel){&QLINEAR_CONV_IO, ISA_SCALAR}},
    {"qlinear_conv_ref", ISA_SCALAR, NULL, qconv_prepare, qconv_run, &QLINEAR_CONV_IO},
    {0},
};

const OpDesc op_ConvInteger = {"", "ConvInteger", 2, 4, 1, 1, 0, parse_qconv, conv_integer_infer, conv_integer_flops,
                               conv_integer_kernels};
const OpDesc op_QLinearConv = {"", "QLinearConv", 8, 9, 1, 1, 0, parse_qconv, qlinear_conv_infer, qlinear_conv_flops,
                               qlinear_conv_kernels};
