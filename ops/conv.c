/* conv.c - Conv in 1, 2 and 3 spatial dimensions.
 *
 * Kernels: float32 through the packed GEMM with im2col done inside B's packing (no
 * im2col buffer), 1x1 convolutions as plain GEMMs, a direct depthwise kernel, and a
 * naive direct loop that is the oracle and the path for other types. 1-D and 2-D are
 * handled as 3-D with leading unit dims. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/gemm.h"
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

static crun_status conv_infer(InferCtx *c)
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

static void geom_of(const KernelCtx *k, ConvGeom *g)
{
    char buf[160];
    const char *err = conv_geom(k->params, k->in[0], k->in[1], g, buf, sizeof buf);
    assert(!err); /* infer checked these shapes */
    (void)err;
}

/* ================= naive direct convolution (oracle; any float type) ================= */

static crun_status conv_run_naive(KernelCtx *k)
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

typedef struct ConvState {
    const GemmUkernel *uk;
    size_t group_stride; /* floats between the packed weights of two groups */
    float packed[];
} ConvState;

static bool is_pointwise(const ConvGeom *g)
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

static crun_status conv_gemm_prepare(PrepCtx *c)
{
    ConvGeom g;
    char buf[160];
    conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf);
    const GemmUkernel *uk = gemm_ukernel_best();
    int64_t K = g.Cg * g.w.k_vol;
    size_t per_group = gemm_packed_a_bytes(uk, g.Mg, K);
    size_t bytes = sizeof(ConvState) + per_group * (size_t)g.G;
    ConvState *s = mem_alloc_aligned(bytes);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    s->uk = uk;
    s->group_stride = per_group / sizeof(float);
    const float *w = c->in[1]->data;
    for (int64_t grp = 0; grp < g.G; grp++) {
        GemmMatrix a = {w + grp * g.Mg * K, K, false};
        gemm_pack_a(uk, &a, g.Mg, K, s->packed + grp * s->group_stride);
    }
    c->state = s;
    c->state_bytes = bytes;
    GemmArgs ga = {.M = g.Mg, .N = g.w.out_vol, .K = K, .uk = uk, .a_packed = s->packed};
    c->ws_bytes = gemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

typedef struct Im2col {
    const ConvGeom *g;
    const float *x; /* first channel of this image and group */
} Im2col;

/* B[k][n] = x[c][iz][iy][ix] for k = (c, kz, ky, kx) and n = (oz, oy, ox), 0 in padding. */
static void pack_b_im2col(const void *src, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst)
{
    const Im2col *ic = src;
    const ConvGeom *g = ic->g;
    int64_t bz[64], by[64], bx[64]; /* first input coordinate of each column in a strip */
    assert(nr <= 64);
    for (int64_t s = 0; s < nc; s += nr) {
        int w = (int)CRUN_MIN((int64_t)nr, nc - s);
        for (int j = 0; j < w; j++) {
            int64_t col = n0 + s + j;
            int64_t ox = col % g->w.out[2], oy = (col / g->w.out[2]) % g->w.out[1], oz = col / (g->w.out[2] * g->w.out[1]);
            bz[j] = oz * g->w.s[0] - g->w.pb[0];
            by[j] = oy * g->w.s[1] - g->w.pb[1];
            bx[j] = ox * g->w.s[2] - g->w.pb[2];
        }
        float *d = dst + (s / nr) * kc * nr;
        for (int64_t kk = 0; kk < kc; kk++, d += nr) {
            int64_t k = k0 + kk;
            int64_t kx = k % g->w.k[2], ky = (k / g->w.k[2]) % g->w.k[1], kz = (k / (g->w.k[2] * g->w.k[1])) % g->w.k[0];
            int64_t c = k / g->w.k_vol;
            const float *plane = ic->x + c * g->w.in_vol;
            int64_t dz = kz * g->w.d[0], dy = ky * g->w.d[1], dx = kx * g->w.d[2];
            for (int j = 0; j < nr; j++) {
                float v = 0.0f;
                if (j < w) {
                    int64_t iz = bz[j] + dz, iy = by[j] + dy, ix = bx[j] + dx;
                    if (iz >= 0 && iz < g->w.in[0] && iy >= 0 && iy < g->w.in[1] && ix >= 0 && ix < g->w.in[2])
                        v = plane[(iz * g->w.in[1] + iy) * g->w.in[2] + ix];
                }
                d[j] = v;
            }
        }
    }
}

static crun_status conv_gemm_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *b = k->n_in > 2 ? k->in[2] : NULL;
    const ConvState *s = k->state;
    ConvGeom g;
    geom_of(k, &g);
    int64_t K = g.Cg * g.w.k_vol;
    bool pointwise = is_pointwise(&g);
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t grp = 0; grp < g.G; grp++) {
            const float *xg = (const float *)x->data + (n * g.C + grp * g.Cg) * g.w.in_vol;
            float *yg = (float *)k->out[0]->data + (n * g.M + grp * g.Mg) * g.w.out_vol;
            Im2col ic = {&g, xg};
            GemmMatrix xm = {xg, g.w.in_vol, false};
            GemmArgs ga = {.M = g.Mg, .N = g.w.out_vol, .K = K, .uk = s->uk,
                           .a_packed = s->packed + grp * s->group_stride,
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

static bool pointwise_applies(const PrepCtx *c, const void *kdata)
{
    ConvGeom g;
    char buf[160];
    return weights_const_f32(c) && !conv_geom(c->params, c->in[0], c->in[1], &g, buf, sizeof buf) && is_pointwise(&g);
}

static bool gemm_applies(const PrepCtx *c, const void *kdata) { return weights_const_f32(c); }

/* The 1x1 and im2col variants share code (the GEMM reads the input directly when the
 * kernel is pointwise); they are listed apart so plans say which one runs. */
static const KernelVariant conv_kernels[] = {
    {"conv_dw_direct", ISA_SCALAR, depthwise_applies, NULL, depthwise_run, NULL},
    {"conv_1x1_gemm", ISA_SCALAR, pointwise_applies, conv_gemm_prepare, conv_gemm_run, NULL},
    {"conv_im2col_gemm", ISA_SCALAR, gemm_applies, conv_gemm_prepare, conv_gemm_run, NULL},
    {"conv_naive", ISA_SCALAR, NULL, NULL, conv_run_naive, NULL},
    {0}};
const OpDesc op_Conv = {"", "Conv", 2, 3, 1, 1, OPF_ACT_EPILOGUE, parse_conv, conv_infer, conv_flops, conv_kernels};
