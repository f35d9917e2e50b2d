/* convtranspose.c - ConvTranspose in 1, 2 and 3 spatial dimensions (opsets 1 and 11).
 *
 * Y[n, g*Mg + m, o] = B[g*Mg + m] + sum over c < Cg, kernel offset k and input position i
 *   with o = i*stride + k*dilation - pad_begin  of  X[n, g*Cg + c, i] * W[g*Cg + c, m, k].
 *
 * Kernels: float32 as a GEMM (columns = W^T . X per group) followed by col2im, which
 * scatters each column into the output; and a naive gather loop in double that is the
 * oracle and the path for float16, bfloat16 and double. 1-D and 2-D are handled as 3-D
 * with leading unit axes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "ops/spatial.h"
#include "runtime/threadpool.h"

typedef struct CtParams {
    WindowAttrs w;
    int64_t group;
    int n_outpad, n_outshape;
    int64_t outpad[3];
    int64_t outshape[CRUN_MAX_RANK];
} CtParams;

typedef struct CtGeom {
    int nsp;
    int64_t N, C, M, G, Cg, Mg;
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
    int64_t in_vol, out_vol, k_vol;
} CtGeom;

static crun_status parse_convtranspose(Node *n, Diag *d)
{
    CtParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = window_attrs_parse(n, &p->w, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "group", 1, &p->group, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "output_padding", p->outpad, 3, &p->n_outpad, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "output_shape", p->outshape, CRUN_MAX_RANK, &p->n_outshape, d);
    if (st != CRUN_OK)
        return st;
    if (p->group < 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "group must be >= 1 (got %lld)", (long long)p->group);
    for (int i = 0; i < p->n_outpad; i++)
        if (p->outpad[i] < 0 || p->outpad[i] > SPATIAL_ATTR_MAX)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "output_padding must be in [0, %lld]",
                             (long long)SPATIAL_ATTR_MAX);
    for (int i = 0; i < p->n_outshape; i++)
        if (p->outshape[i] < 1 || p->outshape[i] > CRUN_MAX_NUMEL)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "output_shape values must be in [1, 2^40]");
    return CRUN_OK;
}

/* Floor division by 2 (pads may be negative when output_shape asks for more than the
 * full output: the extra rows are then bias only). */
static int64_t half_floor(int64_t v)
{
    return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

/* Output size and begin padding along one axis (ConvTranspose spec). */
static void ct_axis(const CtParams *p, int j, int nsp, int64_t in, int64_t ek, int64_t s, int64_t *out, int64_t *pb)
{
    int64_t op = p->n_outpad ? p->outpad[j] : 0;
    int64_t full = s * (in - 1) + op + ek;
    int64_t want = -1;
    if (p->n_outshape)
        want = p->outshape[p->n_outshape - nsp + j];
    else if (p->w.auto_pad == PAD_SAME_UPPER || p->w.auto_pad == PAD_SAME_LOWER)
        want = in * s;
    if (want >= 0) {
        int64_t total = full - want;
        *pb = p->w.auto_pad == PAD_SAME_UPPER ? half_floor(total) : total - half_floor(total);
        *out = want;
        return;
    }
    if (p->w.auto_pad == PAD_VALID || !p->w.n_pads) {
        *pb = 0;
        *out = full;
        return;
    }
    *pb = p->w.pads[j];
    *out = full - p->w.pads[j] - p->w.pads[j + nsp];
}

static const char *ct_geom(const CtParams *p, const Tensor *x, const Tensor *w, CtGeom *g, char *buf, size_t bufsz)
{
    memset(g, 0, sizeof *g);
    if (x->rank < 3 || x->rank > 5)
        return "input must have 1 to 3 spatial dims";
    if (w->rank != x->rank)
        return "weight rank differs from input rank";
    int nsp = x->rank - 2;
    if ((p->w.n_kernel && p->w.n_kernel != nsp) || (p->w.n_strides && p->w.n_strides != nsp) ||
        (p->w.n_dilations && p->w.n_dilations != nsp) || (p->w.n_pads && p->w.n_pads != 2 * nsp) ||
        (p->n_outpad && p->n_outpad != nsp) || (p->n_outshape && p->n_outshape != nsp && p->n_outshape != nsp + 2))
        return "kernel_shape, strides, dilations, pads, output_padding or output_shape do not match the spatial rank";
    g->nsp = nsp;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->G = p->group;
    if (g->C != w->dims[0])
        return "weight's first dim must equal the input channels";
    if (g->C % g->G) {
        snprintf(buf, bufsz, "input channels %lld are not divisible by group %lld", (long long)g->C, (long long)g->G);
        return buf;
    }
    g->Cg = g->C / g->G;
    g->Mg = w->dims[1];
    g->M = g->Mg * g->G;
    g->in_vol = g->out_vol = g->k_vol = 1;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - nsp);
        g->in[i] = g->k[i] = g->s[i] = g->d[i] = g->out[i] = 1;
        g->pb[i] = 0;
        if (j >= 0) {
            g->in[i] = x->dims[2 + j];
            g->k[i] = w->dims[2 + j];
            /* stride * input <= 2^61 and the dilated kernel < 2^62: their sum fits int64 */
            if (g->k[i] > SPATIAL_ATTR_MAX || g->in[i] > ((int64_t)1 << 61) / SPATIAL_ATTR_MAX)
                return "a spatial or kernel dim is too large";
            if (p->w.n_kernel && p->w.kernel[j] != g->k[i])
                return "kernel_shape differs from the weight's dims";
            g->s[i] = p->w.n_strides ? p->w.strides[j] : 1;
            g->d[i] = p->w.n_dilations ? p->w.dilations[j] : 1;
            ct_axis(p, j, nsp, g->in[i], (g->k[i] - 1) * g->d[i] + 1, g->s[i], &g->out[i], &g->pb[i]);
            if (g->out[i] < 1) {
                snprintf(buf, bufsz, "output size %lld along spatial axis %d is not positive", (long long)g->out[i], j);
                return buf;
            }
        }
        g->in_vol *= g->in[i];
        g->out_vol *= g->out[i];
        g->k_vol *= g->k[i];
    }
    return NULL;
}

static crun_status ct_infer(InferCtx *c)
{
    const Tensor *x = c->in[0], *w = c->in[1];
    NODE_CHECK(c, x->dtype == w->dtype, "X is %s but W is %s", dtype_name(x->dtype), dtype_name(w->dtype));
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    CtGeom g;
    char buf[160];
    const char *err = ct_geom(c->params, x, w, &g, buf, sizeof buf);
    NODE_CHECK(c, !err, "%s", err);
    if (c->n_in > 2 && c->in[2])
        NODE_CHECK(c, tensor_numel(c->in[2]) == g.M && c->in[2]->dtype == x->dtype, "B must have %lld values",
                   (long long)g.M);
    int64_t dims[CRUN_MAX_RANK] = {g.N, g.M};
    for (int i = 0; i < g.nsp; i++)
        dims[2 + i] = g.out[3 - g.nsp + i];
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

static int64_t ct_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    CtGeom g;
    char buf[160];
    if (ct_geom(n->params, in[0], in[1], &g, buf, sizeof buf))
        return 0;
    return 2 * g.N * g.C * g.in_vol * g.Mg * g.k_vol;
}

static void geom_of(const KernelCtx *k, CtGeom *g)
{
    char buf[160];
    const char *err = ct_geom(k->params, k->in[0], k->in[1], g, buf, sizeof buf);
    assert(!err); /* infer checked these shapes */
    (void)err;
}

/* ================= naive gather (oracle; any float type) ================= */

/* Input index along one axis feeding output o through kernel tap kk, or -1. */
static inline int64_t src_index(const CtGeom *g, int a, int64_t o, int64_t kk)
{
    int64_t t = o + g->pb[a] - kk * g->d[a];
    if (t < 0 || t % g->s[a])
        return -1;
    t /= g->s[a];
    return t < g->in[a] ? t : -1;
}

static crun_status ct_run_naive(KernelCtx *k)
{
    const Tensor *x = k->in[0], *w = k->in[1], *b = k->n_in > 2 ? k->in[2] : NULL;
    Tensor *y = k->out[0];
    CtGeom g;
    geom_of(k, &g);
    int64_t yi = 0;
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t m = 0; m < g.M; m++) {
            int64_t grp = m / g.Mg, mg = m % g.Mg;
            for (int64_t oz = 0; oz < g.out[0]; oz++)
                for (int64_t oy = 0; oy < g.out[1]; oy++)
                    for (int64_t ox = 0; ox < g.out[2]; ox++, yi++) {
                        double s = b ? tensor_get_double(b, m) : 0.0;
                        for (int64_t kz = 0; kz < g.k[0]; kz++) {
                            int64_t iz = src_index(&g, 0, oz, kz);
                            if (iz < 0)
                                continue;
                            for (int64_t ky = 0; ky < g.k[1]; ky++) {
                                int64_t iy = src_index(&g, 1, oy, ky);
                                if (iy < 0)
                                    continue;
                                for (int64_t kx = 0; kx < g.k[2]; kx++) {
                                    int64_t ix = src_index(&g, 2, ox, kx);
                                    if (ix < 0)
                                        continue;
                                    int64_t kk = (kz * g.k[1] + ky) * g.k[2] + kx;
                                    int64_t ii = (iz * g.in[1] + iy) * g.in[2] + ix;
                                    for (int64_t c = 0; c < g.Cg; c++) {
                                        int64_t ch = grp * g.Cg + c;
                                        s += tensor_get_double(x, (n * g.C + ch) * g.in_vol + ii) *
                                             tensor_get_double(w, (ch * g.Mg + mg) * g.k_vol + kk);
                                    }
                                }
                            }
                        }
                        tensor_set_double(y, yi, s);
                    }
        }
    return CRUN_OK;
}

/* ================= float32: GEMM then col2im ================= */

/* Columns are made for a chunk of whole input rows (iz, iy) at a time, so the scratch
 * stays near this many floats whatever the image size: about an L2 cache, so col2im reads
 * what the GEMM just wrote from cache. */
#define CT_COL_BUDGET ((int64_t)1 << 17)

typedef struct CtState {
    const GemmUkernel *uk;
    int64_t rows_per_chunk; /* input rows (of in[2] columns) per GEMM */
    size_t col_floats;      /* column buffer, at the start of the workspace */
    bool packed;            /* W was constant and is packed below, per group */
    size_t group_stride;    /* floats between two groups' packed weights */
    float wpacked[];
} CtState;

static crun_status ct_gemm_prepare(PrepCtx *c)
{
    CtGeom g;
    char buf[160];
    const char *err = ct_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf);
    assert(!err);
    (void)err;
    const GemmUkernel *uk = gemm_ukernel_best();
    int64_t rows_m = g.Mg * g.k_vol, n_rows = g.in[0] * g.in[1];
    int64_t per_row = rows_m * g.in[2];
    int64_t rpc = CRUN_MAX((int64_t)1, CRUN_MIN(n_rows, CT_COL_BUDGET / CRUN_MAX(per_row, (int64_t)1)));
    bool pack = c->in[1]->data != NULL;
    size_t per_group = pack ? gemm_packed_a_bytes(uk, rows_m, g.Cg) : 0;
    size_t bytes = sizeof(CtState) + per_group * (size_t)g.G;
    CtState *s = mem_alloc_aligned(bytes);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    s->uk = uk;
    s->rows_per_chunk = rpc;
    s->col_floats = align_up((size_t)(rows_m * rpc * g.in[2]), CRUN_ALIGN / sizeof(float));
    s->packed = pack;
    s->group_stride = per_group / sizeof(float);
    for (int64_t grp = 0; pack && grp < g.G; grp++) {
        /* A = W_g^T: W_g is [Cg x Mg*kvol] row-major. */
        GemmMatrix a = {(const float *)c->in[1]->data + grp * g.Cg * rows_m, rows_m, true};
        gemm_pack_a(uk, &a, rows_m, g.Cg, s->wpacked + grp * s->group_stride);
    }
    c->state = s;
    c->state_bytes = bytes;
    GemmArgs ga = {.M = rows_m, .N = rpc * g.in[2], .K = g.Cg, .uk = uk, .a_packed = pack ? s->wpacked : NULL};
    c->ws_bytes = s->col_floats * sizeof(float) + gemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

typedef struct Col2im {
    const CtGeom *g;
    const float *col; /* [Mg*kvol][rows * in[2]] for input rows [r0, r0 + rows) */
    int64_t r0, rows;
    float *y;           /* first output channel of this image and group */
    const float *bias;  /* this group's, or NULL */
    bool once;          /* every output takes exactly one tap: stored with its bias, not added */
} Col2im;

/* Whether the taps tile the output exactly once (kernel = stride, no dilation or padding,
 * no extra output): col2im then stores each output instead of adding to a bias fill. */
static bool ct_covers_once(const CtGeom *g)
{
    for (int a = 0; a < 3; a++)
        if (g->k[a] != g->s[a] || g->d[a] != 1 || g->pb[a] != 0 || g->out[a] != g->in[a] * g->s[a])
            return false;
    return true;
}

/* y[m] = bias[m] for output channels m of one image (what the taps then add to). */
typedef struct BiasFill {
    float *y;
    const float *bias;
    int64_t M, vol;
} BiasFill;

static void bias_fill_channel(void *ctx, int64_t m, int thread)
{
    const BiasFill *f = ctx;
    float v = f->bias ? f->bias[m % f->M] : 0.0f, *y = f->y + m * f->vol;
    (void)thread;
    for (int64_t i = 0; i < f->vol; i++)
        y[i] = v;
}

/* Valid input range [lo, hi) along axis a for kernel tap kk: o = i*s + kk*d - pb in [0, out). */
static void tap_range(const CtGeom *g, int a, int64_t kk, int64_t *lo, int64_t *hi)
{
    int64_t off = kk * g->d[a] - g->pb[a];
    /* i*s + off >= 0  ->  i >= ceil(-off / s) */
    int64_t l = off >= 0 ? 0 : (-off + g->s[a] - 1) / g->s[a];
    /* i*s + off <= out - 1  ->  i <= floor((out - 1 - off) / s) */
    int64_t top = g->out[a] - 1 - off;
    int64_t h = top < 0 ? 0 : top / g->s[a] + 1;
    *lo = l;
    *hi = CRUN_MIN(h, g->in[a]);
}

static void col2im_channel(void *ctx, int64_t m, int thread)
{
    const Col2im *j = ctx;
    const CtGeom *g = j->g;
    int64_t W = g->in[2], ld = j->rows * W;
    float *y = j->y + m * g->out_vol, bias = j->bias ? j->bias[m] : 0.0f;
    (void)thread;
    for (int64_t kz = 0; kz < g->k[0]; kz++)
        for (int64_t ky = 0; ky < g->k[1]; ky++)
            for (int64_t kx = 0; kx < g->k[2]; kx++) {
                int64_t kk = (kz * g->k[1] + ky) * g->k[2] + kx;
                const float *col = j->col + (m * g->k_vol + kk) * ld;
                int64_t xlo, xhi;
                tap_range(g, 2, kx, &xlo, &xhi);
                int64_t ox0 = kx * g->d[2] - g->pb[2];
                for (int64_t r = j->r0; r < j->r0 + j->rows; r++) {
                    int64_t iz = r / g->in[1], iy = r % g->in[1];
                    int64_t oz = iz * g->s[0] + kz * g->d[0] - g->pb[0];
                    int64_t oy = iy * g->s[1] + ky * g->d[1] - g->pb[1];
                    if (oz < 0 || oz >= g->out[0] || oy < 0 || oy >= g->out[1])
                        continue;
                    float *yrow = y + (oz * g->out[1] + oy) * g->out[2];
                    const float *crow = col + (r - j->r0) * W;
                    if (j->once)
                        for (int64_t ix = xlo; ix < xhi; ix++)
                            yrow[ix * g->s[2] + ox0] = crow[ix] + bias;
                    else
                        for (int64_t ix = xlo; ix < xhi; ix++)
                            yrow[ix * g->s[2] + ox0] += crow[ix];
                }
            }
}

static crun_status ct_gemm_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *w = k->in[1], *b = k->n_in > 2 ? k->in[2] : NULL;
    const CtState *s = k->state;
    CtGeom g;
    geom_of(k, &g);
    float *col = k->ws;
    void *gemm_ws = (char *)k->ws + s->col_floats * sizeof(float);
    int64_t rows_m = g.Mg * g.k_vol, n_rows = g.in[0] * g.in[1];
    float *y = k->out[0]->data;
    bool once = ct_covers_once(&g);
    BiasFill fill = {y, b ? b->data : NULL, g.M, g.out_vol};
    if (!once)
        pool_for(k->pool, g.N * g.M, bias_fill_channel, &fill);
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t grp = 0; grp < g.G; grp++) {
            const float *xg = (const float *)x->data + (n * g.C + grp * g.Cg) * g.in_vol;
            for (int64_t r0 = 0; r0 < n_rows; r0 += s->rows_per_chunk) {
                int64_t rows = CRUN_MIN(s->rows_per_chunk, n_rows - r0);
                GemmMatrix bm = {xg + r0 * g.in[2], g.in_vol, false};
                GemmArgs ga = {.M = rows_m,
                               .N = rows * g.in[2],
                               .K = g.Cg,
                               .uk = s->uk,
                               .pack_b = gemm_pack_b_matrix,
                               .b_src = &bm,
                               .c = col,
                               .ldc = rows * g.in[2],
                               .alpha = 1.0f,
                               .beta = 1.0f};
                if (s->packed)
                    ga.a_packed = s->wpacked + grp * s->group_stride;
                else
                    ga.a = (GemmMatrix){(const float *)w->data + grp * g.Cg * rows_m, rows_m, true};
                gemm_run(&ga, gemm_ws, k->pool);
                Col2im job = {&g, col, r0, rows, y + (n * g.M + grp * g.Mg) * g.out_vol,
                              b ? (const float *)b->data + grp * g.Mg : NULL, once};
                pool_for(k->pool, g.Mg, col2im_channel, &job);
            }
        }
    return CRUN_OK;
}

static bool ct_gemm_applies(const PrepCtx *c, const void *kdata)
{
    return c->in[0]->dtype == CRUN_DTYPE_FLOAT && c->in[1]->dtype == CRUN_DTYPE_FLOAT;
}

static const KernelVariant ct_kernels[] = {
    {"convtranspose_gemm_col2im", ISA_SCALAR, ct_gemm_applies, ct_gemm_prepare, ct_gemm_run, NULL},
    {"convtranspose_naive", ISA_SCALAR, NULL, NULL, ct_run_naive, NULL},
    {0}};
const OpDesc op_ConvTranspose = {"", "ConvTranspose",     2,        3,        1,         1,
                                 0,  parse_convtranspose, ct_infer, ct_flops, ct_kernels};
