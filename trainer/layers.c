/* layers.c - forward and backward of each layer kind over a batch (see trainer.h).
 *
 * Convolution and Linear run on the runtime's packed GEMM (ops/gemm.h): a convolution
 * per sample as W . im2col(x), its weight gradient as dY . im2col(x)^T summed over the
 * samples of a chunk, its input gradient as col2im(W^T . dY). Chunks of the batch run on
 * the worker pool; the chunks' partial weight gradients are added in chunk order. */
#include <math.h>
#include <string.h>

#include "ops/gemm.h"
#include "runtime/threadpool.h"
#include "trainer/trainer.h"

/* ---- helpers ---- */

static Layer *in_layer(Net *net, const Layer *l, int i) { return &net->layers[l->in[i]]; }

static TShape in_shape(Net *net, const Layer *l, int i) { return in_layer(net, l, i)->out; }

/* The layer that owns the buffers l's output lives in (aliases point at their input). */
Layer *layer_owner(Net *net, Layer *l)
{
    while (!l->own_y)
        l = in_layer(net, l, 0);
    return l;
}

float *layer_grad_in(Net *net, Layer *l, int i, bool *add)
{
    Layer *o = layer_owner(net, in_layer(net, l, i));
    *add = o->dy_set;
    o->dy_set = true;
    return o->dy;
}

void layer_chunk_range(const Net *net, int64_t t, int *s0, int *s1)
{
    *s0 = (int)(t * net->cur / TRAIN_CHUNKS);
    *s1 = (int)((t + 1) * net->cur / TRAIN_CHUNKS);
}

static uint8_t *thread_scratch(const Net *net, int thread) { return net->scratch + (size_t)thread * net->scratch_per; }

/* A thread's scratch for a convolution: columns and their gradient, then GEMM workspace. */
static void *conv_ws(float *cols, int64_t kc, int64_t p)
{
    size_t off = ((size_t)(2 * kc * p) * sizeof(float) + CRUN_ALIGN - 1) / CRUN_ALIGN * CRUN_ALIGN;
    return (uint8_t *)cols + off;
}

/* C (M x N, ldc) [+]= op(A) . op(B) [+ row bias], on one thread (ws: gemm_ws_bytes_max). */
static void gemm1(int64_t M, int64_t N, int64_t K, GemmMatrix a, GemmMatrix b, float *c, int64_t ldc,
                  const float *row_bias, bool accumulate, void *ws, struct ThreadPool *pool)
{
    GemmArgs g = {.M = M, .N = N, .K = K, .uk = gemm_ukernel_for(M), .a = a, .pack_b = gemm_pack_b_matrix,
                  .b_src = &b, .c = c, .ldc = ldc, .alpha = 1.0f, .beta = 1.0f,
                  .bias_kind = row_bias ? GEMM_BIAS_ROW : GEMM_BIAS_NONE, .bias = row_bias,
                  .act = {.kind = ACT_NONE}, .accumulate = accumulate};
    gemm_run(&g, ws, pool);
}

/* ---- convolution ---- */

typedef struct ConvGeom {
    int cin, h, w, cout, k, stride, pad, groups, ho, wo;
    int64_t cg, mg, kc, p; /* channels and outputs per group, im2col rows and columns */
} ConvGeom;

static ConvGeom conv_geom(Net *net, const Layer *l)
{
    TShape x = in_shape(net, l, 0);
    ConvGeom c = {.cin = x.c, .h = x.h, .w = x.w, .cout = l->cout, .k = l->k, .stride = l->stride, .pad = l->pad,
                  .groups = l->groups, .ho = l->out.h, .wo = l->out.w};
    c.cg = x.c / l->groups;
    c.mg = l->cout / l->groups;
    c.kc = c.cg * l->k * l->k;
    c.p = (int64_t)c.ho * c.wo;
    return c;
}

static bool conv_is_1x1(const ConvGeom *c) { return c->k == 1 && c->stride == 1 && c->pad == 0; }

/* The output columns [ox0, ox1) whose input column ox * stride - pad + kx lies inside. */
static void valid_cols(const ConvGeom *c, int kx, int *ox0, int *ox1)
{
    int lo = c->pad - kx, hi = c->w + c->pad - kx; /* ox * stride in [lo, hi) */
    *ox0 = lo <= 0 ? 0 : (lo + c->stride - 1) / c->stride;
    *ox1 = hi <= 0 ? 0 : (hi + c->stride - 1) / c->stride;
    *ox1 = *ox1 < c->wo ? *ox1 : c->wo;
    *ox0 = *ox0 < *ox1 ? *ox0 : *ox1;
}

/* cols[(ci*k + ky)*k + kx][oy*wo + ox] = x[ci][oy*s - pad + ky][ox*s - pad + kx] (0 outside). */
static void im2col(const ConvGeom *c, const float *x, float *cols)
{
    for (int ci = 0; ci < c->cg; ci++)
        for (int ky = 0; ky < c->k; ky++)
            for (int kx = 0; kx < c->k; kx++) {
                float *row = cols + ((ci * c->k + ky) * c->k + kx) * c->p;
                int ox0, ox1;
                valid_cols(c, kx, &ox0, &ox1);
                for (int oy = 0; oy < c->ho; oy++) {
                    int iy = oy * c->stride - c->pad + ky;
                    float *dst = row + oy * c->wo;
                    if (iy < 0 || iy >= c->h || ox0 == ox1) {
                        memset(dst, 0, (size_t)c->wo * sizeof *dst);
                        continue;
                    }
                    const float *src = x + ((int64_t)ci * c->h + iy) * c->w;
                    int shift = kx - c->pad; /* input column of ox: ox * stride + shift */
                    memset(dst, 0, (size_t)ox0 * sizeof *dst);
                    if (c->stride == 1)
                        memcpy(dst + ox0, src + ox0 + shift, (size_t)(ox1 - ox0) * sizeof *dst);
                    else
                        for (int ox = ox0; ox < ox1; ox++)
                            dst[ox] = src[ox * c->stride + shift];
                    memset(dst + ox1, 0, (size_t)(c->wo - ox1) * sizeof *dst);
                }
            }
}

/* The adjoint of im2col: adds cols back into dx. */
static void col2im(const ConvGeom *c, const float *cols, float *dx)
{
    for (int ci = 0; ci < c->cg; ci++)
        for (int ky = 0; ky < c->k; ky++)
            for (int kx = 0; kx < c->k; kx++) {
                const float *row = cols + ((ci * c->k + ky) * c->k + kx) * c->p;
                int ox0, ox1;
                valid_cols(c, kx, &ox0, &ox1);
                for (int oy = 0; oy < c->ho; oy++) {
                    int iy = oy * c->stride - c->pad + ky;
                    if (iy < 0 || iy >= c->h)
                        continue;
                    float *dst = dx + ((int64_t)ci * c->h + iy) * c->w;
                    const float *src = row + oy * c->wo;
                    for (int ox = ox0, shift = kx - c->pad; ox < ox1; ox++)
                        dst[ox * c->stride + shift] += src[ox];
                }
            }
}

typedef struct ConvJob {
    Net *net;
    Layer *l;
    ConvGeom c;      /* c.cg and c.kc: the channels this job reads (a slice in QAT) */
    int64_t w_ld;    /* row stride of the weights (the whole layer's im2col rows) */
    int64_t ch0;     /* first input channel of the slice within each group */
    int64_t cg_full; /* input channels per group */
    const float *x, *w, *bias;
    float *y, *dx;
    bool dx_add;
} ConvJob;

/* The columns of sample s, group g: x itself for a 1x1 convolution, else im2col. */
static GemmMatrix conv_cols(const ConvJob *j, int s, int g, float *cols)
{
    const ConvGeom *c = &j->c;
    int64_t plane = (int64_t)c->h * c->w;
    const float *xs = j->x + (int64_t)s * c->cin * plane + (g * j->cg_full + j->ch0) * plane;
    if (conv_is_1x1(c))
        return (GemmMatrix){xs, c->p, false};
    im2col(c, xs, cols);
    return (GemmMatrix){cols, c->p, false};
}

static const float *conv_w(const ConvJob *j, int g) { return j->w + g * j->c.mg * j->w_ld + j->ch0 * j->c.k * j->c.k; }

static void conv_fwd_task(void *ctx, int64_t t, int thread)
{
    const ConvJob *j = ctx;
    const ConvGeom *c = &j->c;
    float *cols = (float *)thread_scratch(j->net, thread);
    void *ws = conv_ws(cols, c->kc, c->p);
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    for (int s = s0; s < s1; s++)
        for (int g = 0; g < c->groups; g++) {
            GemmMatrix b = conv_cols(j, s, g, cols);
            float *y = j->y + (int64_t)s * c->cout * c->p + g * c->mg * c->p;
            gemm1(c->mg, c->p, c->kc, (GemmMatrix){conv_w(j, g), j->w_ld, false}, b, y, c->p,
                  j->bias ? j->bias + g * c->mg : NULL, false, ws, NULL);
        }
}

void conv_run(Net *net, Layer *l, const float *x, const float *w, int ch0, int nch, const float *bias, float *y)
{
    ConvJob j = {.net = net, .l = l, .c = conv_geom(net, l), .ch0 = ch0, .x = x, .w = w, .bias = bias, .y = y};
    j.w_ld = j.c.kc;
    j.cg_full = j.c.cg;
    j.c.cg = nch;
    j.c.kc = (int64_t)nch * l->k * l->k;
    pool_for(net->pool, TRAIN_CHUNKS, conv_fwd_task, &j);
}

static void conv_forward(Net *net, Layer *l)
{
    conv_run(net, l, layer_owner(net, in_layer(net, l, 0))->y, l->weight.w, 0, in_shape(net, l, 0).c / l->groups,
             l->bias_on ? l->bias.w : NULL, l->y);
}

static void conv_bwd_task(void *ctx, int64_t t, int thread)
{
    const ConvJob *j = ctx;
    const ConvGeom *c = &j->c;
    float *cols = (float *)thread_scratch(j->net, thread), *dcols = cols + c->kc * c->p;
    void *ws = conv_ws(cols, c->kc, c->p);
    float *dw = j->net->wpart + (size_t)t * j->net->wpart_per, *db = dw + c->cout * c->kc;
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    memset(dw, 0, (size_t)(c->cout * c->kc + c->cout) * sizeof *dw);
    for (int s = s0; s < s1; s++)
        for (int g = 0; g < c->groups; g++) {
            const float *dy = j->l->dy + (int64_t)s * c->cout * c->p + g * c->mg * c->p;
            GemmMatrix cm = conv_cols(j, s, g, cols);
            gemm1(c->mg, c->kc, c->p, (GemmMatrix){dy, c->p, false}, (GemmMatrix){cm.data, c->p, true},
                  dw + g * c->mg * c->kc, c->kc, NULL, true, ws, NULL);
            for (int64_t m = 0; m < c->mg; m++) {
                float acc = 0.0f;
                for (int64_t p = 0; p < c->p; p++)
                    acc += dy[m * c->p + p];
                db[g * c->mg + m] += acc;
            }
            if (!j->dx)
                continue;
            float *dxs = j->dx + (int64_t)s * c->cin * c->h * c->w + g * c->cg * c->h * c->w;
            GemmMatrix wt = {conv_w(j, g), c->kc, true};
            if (conv_is_1x1(c)) {
                gemm1(c->kc, c->p, c->mg, wt, (GemmMatrix){dy, c->p, false}, dxs, c->p, NULL, j->dx_add, ws, NULL);
                continue;
            }
            gemm1(c->kc, c->p, c->mg, wt, (GemmMatrix){dy, c->p, false}, dcols, c->p, NULL, false, ws, NULL);
            if (!j->dx_add)
                memset(dxs, 0, (size_t)(c->cg * c->h * c->w) * sizeof *dxs);
            col2im(c, dcols, dxs);
        }
}

/* Backward with weights w (the fake-quantized ones in QAT). */
static void conv_backward(Net *net, Layer *l, const float *w)
{
    ConvJob j = {.net = net, .l = l, .c = conv_geom(net, l), .x = layer_owner(net, in_layer(net, l, 0))->y, .w = w};
    j.w_ld = j.c.kc;
    j.cg_full = j.c.cg;
    if (l->need_dx)
        j.dx = layer_grad_in(net, l, 0, &j.dx_add);
    pool_for(net->pool, TRAIN_CHUNKS, conv_bwd_task, &j);
    int64_t nw = (int64_t)l->cout * j.c.kc;
    for (int t = 0; t < TRAIN_CHUNKS; t++) {
        const float *part = net->wpart + (size_t)t * net->wpart_per;
        for (int64_t i = 0; i < nw; i++)
            l->weight.g[i] = t ? l->weight.g[i] + part[i] : part[i];
        for (int m = 0; l->bias_on && m < l->cout; m++)
            l->bias.g[m] = t ? l->bias.g[m] + part[nw + m] : part[nw + m];
    }
}

/* ---- linear: y[B x N] = x[B x K] . W^T + b, W stored [N x K] ---- */

void linear_run(Net *net, Layer *l, const float *x, const float *w, int64_t k0, int64_t k1, const float *bias,
                float *y)
{
    int64_t K = tshape_size(in_shape(net, l, 0)), N = l->cout;
    GemmArgs g = {.M = net->cur, .N = N, .K = k1 - k0, .uk = gemm_ukernel_for(net->cur), .a = {x + k0, K, false},
                  .pack_b = gemm_pack_b_matrix, .c = y, .ldc = N, .alpha = 1.0f, .beta = 1.0f,
                  .bias_kind = bias ? GEMM_BIAS_COL : GEMM_BIAS_NONE, .bias = bias, .act = {.kind = ACT_NONE}};
    GemmMatrix b = {w + k0, K, true};
    g.b_src = &b;
    gemm_run(&g, net->scratch, net->pool);
}

static void linear_forward(Net *net, Layer *l)
{
    linear_run(net, l, layer_owner(net, in_layer(net, l, 0))->y, l->weight.w, 0, tshape_size(in_shape(net, l, 0)),
               l->bias_on ? l->bias.w : NULL, l->y);
}

static void linear_backward(Net *net, Layer *l, const float *w)
{
    int64_t K = tshape_size(in_shape(net, l, 0)), N = l->cout, B = net->cur;
    const float *x = layer_owner(net, in_layer(net, l, 0))->y;
    GemmMatrix dyt = {l->dy, N, true}, xm = {x, K, false};
    GemmArgs g = {.M = N, .N = K, .K = B, .uk = gemm_ukernel_for(N), .a = dyt, .pack_b = gemm_pack_b_matrix,
                  .b_src = &xm, .c = l->weight.g, .ldc = K, .alpha = 1.0f, .beta = 1.0f,
                  .act = {.kind = ACT_NONE}};
    gemm_run(&g, net->scratch, net->pool);
    for (int64_t n = 0; l->bias_on && n < N; n++) {
        float acc = 0.0f;
        for (int64_t s = 0; s < B; s++)
            acc += l->dy[s * N + n];
        l->bias.g[n] = acc;
    }
    if (!l->need_dx)
        return;
    bool add;
    float *dx = layer_grad_in(net, l, 0, &add);
    GemmMatrix dym = {l->dy, N, false}, wm = {w, K, false};
    GemmArgs d = {.M = B, .N = K, .K = N, .uk = gemm_ukernel_for(B), .a = dym, .pack_b = gemm_pack_b_matrix,
                  .b_src = &wm, .c = dx, .ldc = K, .alpha = 1.0f, .beta = 1.0f, .act = {.kind = ACT_NONE},
                  .accumulate = add};
    gemm_run(&d, net->scratch, net->pool);
}

/* ---- batch normalization (per channel over batch and space) ---- */

typedef struct BnJob {
    Net *net;
    Layer *l;
    const float *x;
    float *dx;
    bool add;
    int64_t hw;
} BnJob;

static bool bn_batch_stats(const Net *net) { return net->training && !net->bn_frozen; }

/* Sums of a plane in 8 lanes (vectorizable, and the same grouping every time). */
static void plane_sums(const float *restrict x, const float *restrict g, int64_t n, float mean, float *sum,
                       float *sum2)
{
    float a[8] = {0}, b[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int t = 0; t < 8; t++) {
            float v = x[i + t] - mean;
            a[t] += g ? g[i + t] : v;
            b[t] += g ? g[i + t] * x[i + t] : v * v;
        }
    for (; i < n; i++) {
        float v = x[i] - mean;
        a[0] += g ? g[i] : v;
        b[0] += g ? g[i] * x[i] : v * v;
    }
    *sum = *sum2 = 0;
    for (int t = 0; t < 8; t++)
        *sum += a[t], *sum2 += b[t];
}

/* Channel c's mean and variance over the batch (planes summed in double). */
static void bn_batch_moments(const BnJob *j, int c, float *mean, float *var)
{
    Layer *l = j->l;
    int64_t hw = j->hw, n = (int64_t)j->net->cur * hw, C = l->out.c;
    double sum = 0, sq = 0;
    float s, s2;
    for (int smp = 0; smp < j->net->cur; smp++) {
        plane_sums(j->x + ((int64_t)smp * C + c) * hw, NULL, hw, 0.0f, &s, &s2);
        sum += s;
    }
    *mean = (float)(sum / (double)n);
    for (int smp = 0; smp < j->net->cur; smp++) {
        plane_sums(j->x + ((int64_t)smp * C + c) * hw, NULL, hw, *mean, &s, &s2);
        sq += s2;
    }
    *var = (float)(sq / (double)n);
    float unbiased = n > 1 ? (float)(sq / (double)(n - 1)) : *var;
    l->run_mean[c] = (1 - l->momentum) * l->run_mean[c] + l->momentum * *mean;
    l->run_var[c] = (1 - l->momentum) * l->run_var[c] + l->momentum * unbiased;
}

static void bn_fwd_task(void *ctx, int64_t c, int thread)
{
    const BnJob *j = ctx;
    Layer *l = j->l;
    int C = l->out.c;
    int64_t hw = j->hw;
    float mean, var;
    if (bn_batch_stats(j->net)) {
        bn_batch_moments(j, (int)c, &mean, &var);
    } else {
        mean = l->run_mean[c];
        var = l->run_var[c];
    }
    float inv = 1.0f / sqrtf(var + l->eps);
    l->stat[2 * c] = mean;
    l->stat[2 * c + 1] = inv;
    float gam = l->weight.w[c], bet = l->bias.w[c];
    for (int s = 0; s < j->net->cur; s++) {
        int64_t o = ((int64_t)s * C + c) * hw;
        const float *restrict x = j->x + o;
        float *restrict xh = l->save + o, *restrict y = l->y + o;
        for (int64_t i = 0; i < hw; i++) {
            xh[i] = (x[i] - mean) * inv;
            y[i] = gam * xh[i] + bet;
        }
    }
}

static void bn_bwd_task(void *ctx, int64_t c, int thread)
{
    const BnJob *j = ctx;
    Layer *l = j->l;
    int C = l->out.c;
    int64_t hw = j->hw, n = (int64_t)j->net->cur * hw;
    double dg_sum = 0, db_sum = 0;
    for (int s = 0; s < j->net->cur; s++) {
        int64_t o = ((int64_t)s * C + c) * hw;
        float sb, sg;
        plane_sums(l->save + o, l->dy + o, hw, 0.0f, &sb, &sg);
        db_sum += sb, dg_sum += sg;
    }
    float dg = (float)dg_sum, dbeta = (float)db_sum;
    l->weight.g[c] = dg;
    l->bias.g[c] = dbeta;
    if (!j->dx)
        return;
    float k = l->weight.w[c] * l->stat[2 * c + 1];
    /* with batch statistics the mean and variance depend on x too */
    bool batch = bn_batch_stats(j->net);
    float mb = batch ? dbeta / (float)n : 0.0f, mg = batch ? dg / (float)n : 0.0f;
    for (int s = 0; s < j->net->cur; s++) {
        int64_t o = ((int64_t)s * C + c) * hw;
        const float *restrict dy = l->dy + o, *restrict xh = l->save + o;
        float *restrict dx = j->dx + o;
        if (j->add)
            for (int64_t i = 0; i < hw; i++)
                dx[i] += k * (dy[i] - mb - xh[i] * mg);
        else
            for (int64_t i = 0; i < hw; i++)
                dx[i] = k * (dy[i] - mb - xh[i] * mg);
    }
}

static void bn_forward(Net *net, Layer *l)
{
    BnJob j = {net, l, layer_owner(net, in_layer(net, l, 0))->y, NULL, false, (int64_t)l->out.h * l->out.w};
    pool_for(net->pool, l->out.c, bn_fwd_task, &j);
}

static void bn_backward(Net *net, Layer *l)
{
    BnJob j = {net, l, NULL, NULL, false, (int64_t)l->out.h * l->out.w};
    if (l->need_dx)
        j.dx = layer_grad_in(net, l, 0, &j.add);
    pool_for(net->pool, l->out.c, bn_bwd_task, &j);
}

/* ---- activations ---- */

static float act_f(TrainAct a, float x, float alpha)
{
    switch (a) {
    case TACT_RELU: return x > 0 ? x : 0;
    case TACT_RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
    case TACT_LEAKY: return x > 0 ? x : alpha * x;
    case TACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case TACT_TANH: return tanhf(x);
    case TACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678f));
    }
    return x;
}

/* d act / dx at x (y = act(x)). */
static float act_df(TrainAct a, float x, float y, float alpha)
{
    switch (a) {
    case TACT_RELU: return x > 0 ? 1.0f : 0.0f;
    case TACT_RELU6: return x > 0 && x < 6 ? 1.0f : 0.0f;
    case TACT_LEAKY: return x > 0 ? 1.0f : alpha;
    case TACT_SIGMOID: return y * (1 - y);
    case TACT_TANH: return 1 - y * y;
    case TACT_GELU: return 0.5f * (1.0f + erff(x * 0.70710678f)) + x * 0.39894228f * expf(-0.5f * x * x);
    }
    return 1.0f;
}

typedef struct EltJob {
    Net *net;
    Layer *l;
    const float *x;
    float *dx;
    bool add;
    int64_t per_sample;
} EltJob;

/* The element range of chunk t. */
static void elt_range(const EltJob *j, int64_t t, int64_t *i0, int64_t *i1)
{
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    *i0 = s0 * j->per_sample, *i1 = s1 * j->per_sample;
}

static void act_fwd_task(void *ctx, int64_t t, int thread)
{
    const EltJob *j = ctx;
    const Layer *l = j->l;
    int64_t i0, i1;
    elt_range(j, t, &i0, &i1);
    float *restrict y = l->y;
    const float *restrict x = j->x;
    if (l->act == TACT_RELU) { /* the common case, in a loop compilers vectorize */
        for (int64_t i = i0; i < i1; i++)
            y[i] = x[i] > 0 ? x[i] : 0;
        return;
    }
    for (int64_t i = i0; i < i1; i++)
        y[i] = act_f(l->act, x[i], l->alpha);
}

static void act_bwd_task(void *ctx, int64_t t, int thread)
{
    const EltJob *j = ctx;
    const Layer *l = j->l;
    int64_t i0, i1;
    elt_range(j, t, &i0, &i1);
    const float *restrict x = j->x, *restrict dy = l->dy;
    float *restrict dx = j->dx;
    if (l->act == TACT_RELU && !j->add) {
        for (int64_t i = i0; i < i1; i++)
            dx[i] = x[i] > 0 ? dy[i] : 0;
        return;
    }
    for (int64_t i = i0; i < i1; i++) {
        float g = dy[i] * act_df(l->act, x[i], l->y[i], l->alpha);
        dx[i] = j->add ? dx[i] + g : g;
    }
}

static void act_forward(Net *net, Layer *l)
{
    EltJob j = {net, l, layer_owner(net, in_layer(net, l, 0))->y, NULL, false, tshape_size(l->out)};
    pool_for(net->pool, TRAIN_CHUNKS, act_fwd_task, &j);
}

static void act_backward(Net *net, Layer *l)
{
    if (!l->need_dx)
        return;
    EltJob j = {net, l, layer_owner(net, in_layer(net, l, 0))->y, NULL, false, tshape_size(l->out)};
    j.dx = layer_grad_in(net, l, 0, &j.add);
    pool_for(net->pool, TRAIN_CHUNKS, act_bwd_task, &j);
}

/* ---- pooling ---- */

/* The window of one output: the first largest value's index in the plane. */
static int32_t pool_argmax(const float *xp, TShape xs, const Layer *l, int oy, int ox)
{
    int32_t at = -1;
    float best = -INFINITY;
    for (int ky = 0; ky < l->k; ky++)
        for (int kx = 0; kx < l->k; kx++) {
            int iy = oy * l->stride - l->pad + ky, ix = ox * l->stride - l->pad + kx;
            if (iy < 0 || iy >= xs.h || ix < 0 || ix >= xs.w)
                continue;
            float v = xp[iy * xs.w + ix];
            if (at < 0 || v > best)
                best = v, at = iy * xs.w + ix;
        }
    return at;
}

static void maxpool_fwd_task(void *ctx, int64_t t, int thread)
{
    const EltJob *j = ctx;
    const Layer *l = j->l;
    TShape xs = in_shape(j->net, l, 0);
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    int64_t po = (int64_t)l->out.h * l->out.w, pi = (int64_t)xs.h * xs.w;
    bool k2 = l->k == 2 && l->stride == 2 && l->pad == 0;
    for (int64_t pl = (int64_t)s0 * xs.c; pl < (int64_t)s1 * xs.c; pl++) {
        const float *xp = j->x + pl * pi;
        float *y = l->y + pl * po;
        int32_t *am = l->argmax + pl * po;
        for (int oy = 0; oy < l->out.h; oy++)
            for (int ox = 0; ox < l->out.w; ox++) {
                int32_t at;
                if (k2) { /* 2x2 stride 2, always inside */
                    int32_t a = 2 * oy * xs.w + 2 * ox, b = a + 1, c = a + xs.w, d = c + 1;
                    int32_t ab = xp[b] > xp[a] ? b : a, cd = xp[d] > xp[c] ? d : c;
                    at = xp[cd] > xp[ab] ? cd : ab;
                } else {
                    at = pool_argmax(xp, xs, l, oy, ox);
                }
                y[oy * l->out.w + ox] = at >= 0 ? xp[at] : -INFINITY;
                am[oy * l->out.w + ox] = at;
            }
    }
}

static void maxpool_bwd_task(void *ctx, int64_t t, int thread)
{
    const EltJob *j = ctx;
    const Layer *l = j->l;
    TShape xs = in_shape(j->net, l, 0);
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    int64_t po = (int64_t)l->out.h * l->out.w, pi = (int64_t)xs.h * xs.w;
    if (!j->add)
        memset(j->dx + (int64_t)s0 * xs.c * pi, 0, (size_t)((int64_t)(s1 - s0) * xs.c * pi) * sizeof(float));
    for (int64_t pl = (int64_t)s0 * xs.c; pl < (int64_t)s1 * xs.c; pl++)
        for (int64_t o = 0; o < po; o++)
            if (l->argmax[pl * po + o] >= 0)
                j->dx[pl * pi + l->argmax[pl * po + o]] += l->dy[pl * po + o];
}

static void maxpool_forward(Net *net, Layer *l)
{
    EltJob j = {net, l, layer_owner(net, in_layer(net, l, 0))->y, NULL, false, 0};
    pool_for(net->pool, TRAIN_CHUNKS, maxpool_fwd_task, &j);
}

static void maxpool_backward(Net *net, Layer *l)
{
    if (!l->need_dx)
        return;
    EltJob j = {net, l, NULL, NULL, false, 0};
    j.dx = layer_grad_in(net, l, 0, &j.add);
    pool_for(net->pool, TRAIN_CHUNKS, maxpool_bwd_task, &j);
}

/* AvgPool (padding not counted) and the global average (a window of the whole plane). */
static void avgpool_pass(Net *net, Layer *l, bool backward)
{
    TShape xs = in_shape(net, l, 0);
    bool gap = l->kind == LAYER_GAP, add = false;
    int k = gap ? xs.h : l->k, kw = gap ? xs.w : l->k, stride = gap ? 1 : l->stride, pad = gap ? 0 : l->pad;
    const float *x = layer_owner(net, in_layer(net, l, 0))->y;
    float *dx = NULL;
    int64_t planes = (int64_t)net->cur * xs.c, po = (int64_t)l->out.h * l->out.w, pi = (int64_t)xs.h * xs.w;
    if (backward) {
        if (!l->need_dx)
            return;
        dx = layer_grad_in(net, l, 0, &add);
        if (!add)
            memset(dx, 0, (size_t)(planes * pi) * sizeof *dx);
    }
    for (int64_t pl = 0; pl < planes; pl++)
        for (int oy = 0; oy < l->out.h; oy++)
            for (int ox = 0; ox < l->out.w; ox++) {
                int y0 = oy * stride - pad, x0 = ox * stride - pad;
                int ya = y0 < 0 ? 0 : y0, xa = x0 < 0 ? 0 : x0;
                int yb = y0 + k > xs.h ? xs.h : y0 + k, xb = x0 + kw > xs.w ? xs.w : x0 + kw;
                float inv = 1.0f / (float)((yb - ya) * (xb - xa));
                int64_t o = pl * po + oy * l->out.w + ox;
                if (backward) {
                    float g = l->dy[o] * inv;
                    for (int iy = ya; iy < yb; iy++)
                        for (int ix = xa; ix < xb; ix++)
                            dx[pl * pi + iy * xs.w + ix] += g;
                    continue;
                }
                float acc = 0;
                for (int iy = ya; iy < yb; iy++)
                    for (int ix = xa; ix < xb; ix++)
                        acc += x[pl * pi + iy * xs.w + ix];
                l->y[o] = acc * inv;
            }
}

/* ---- dropout: a mask from a hash of (seed, step, layer, element), so it does not depend
 * on the thread count ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void dropout_forward(Net *net, Layer *l)
{
    const float *x = layer_owner(net, in_layer(net, l, 0))->y;
    int64_t n = net->cur * tshape_size(l->out);
    bool on = net->training && l->alpha > 0; /* (QAT drops Dropout layers) */
    float keep = 1.0f - l->alpha;
    uint64_t base = mix64(net->seed ^ mix64(net->step * 131 + (uint64_t)(l - net->layers)));
    for (int64_t i = 0; i < n; i++) {
        float m = 1.0f;
        if (on)
            m = (float)(mix64(base + (uint64_t)i) >> 40) * (1.0f / 16777216.0f) < keep ? 1.0f / keep : 0.0f;
        l->save[i] = m;
        l->y[i] = x[i] * m;
    }
}

/* ---- elementwise backward shared by dropout, flatten, add and concat ---- */

/* dx[i] (+)= dy[i] * (mask ? mask[i] : 1) over n values. */
static void grad_copy(float *dx, bool add, const float *dy, const float *mask, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = mask ? dy[i] * mask[i] : dy[i];
        dx[i] = add ? dx[i] + g : g;
    }
}

static void pass_backward(Net *net, Layer *l, const float *mask)
{
    if (!l->need_dx)
        return;
    bool add;
    float *dx = layer_grad_in(net, l, 0, &add);
    grad_copy(dx, add, l->dy, mask, net->cur * tshape_size(l->out));
}

static void add_forward(Net *net, Layer *l)
{
    const float *a = layer_owner(net, in_layer(net, l, 0))->y, *b = layer_owner(net, in_layer(net, l, 1))->y;
    int64_t n = net->cur * tshape_size(l->out);
    for (int64_t i = 0; i < n; i++)
        l->y[i] = a[i] + b[i];
}

static void add_backward(Net *net, Layer *l)
{
    for (int i = 0; i < 2 && l->need_dx; i++) {
        bool add;
        float *dx = layer_grad_in(net, l, i, &add);
        grad_copy(dx, add, l->dy, NULL, net->cur * tshape_size(l->out));
    }
}

/* Concatenation along channels: sample s is [a_s, b_s]. */
static void concat_pass(Net *net, Layer *l, bool backward)
{
    int64_t out = tshape_size(l->out);
    for (int i = 0, off = 0; i < 2; i++) {
        int64_t part = tshape_size(in_shape(net, l, i));
        if (backward && l->need_dx) {
            bool add;
            float *dx = layer_grad_in(net, l, i, &add);
            for (int s = 0; s < net->cur; s++)
                grad_copy(dx + s * part, add, l->dy + s * out + off, NULL, part);
        } else if (!backward) {
            const float *x = layer_owner(net, in_layer(net, l, i))->y;
            for (int s = 0; s < net->cur; s++)
                memcpy(l->y + s * out + off, x + s * part, (size_t)part * sizeof *x);
        }
        off += (int)part;
    }
}

/* ---- dispatch ---- */

void layer_forward(Net *net, Layer *l)
{
    if (!l->own_y)
        return;
    bool integer = net->qat && l->q.integer;
    switch (l->kind) {
    case LAYER_CONV:
    case LAYER_LINEAR:
        if (integer)
            qat_forward_integer(net, l);
        else if (l->kind == LAYER_CONV)
            conv_forward(net, l);
        else
            linear_forward(net, l);
        break;
    case LAYER_BN: bn_forward(net, l); break;
    case LAYER_ACT: act_forward(net, l); break;
    case LAYER_MAXPOOL: maxpool_forward(net, l); break;
    case LAYER_AVGPOOL:
    case LAYER_GAP: avgpool_pass(net, l, false); break;
    case LAYER_FLATTEN:
        memcpy(l->y, layer_owner(net, in_layer(net, l, 0))->y, (size_t)(net->cur * tshape_size(l->out)) * sizeof *l->y);
        break;
    case LAYER_DROPOUT: dropout_forward(net, l); break;
    case LAYER_ADD: add_forward(net, l); break;
    case LAYER_CONCAT: concat_pass(net, l, false); break;
    case LAYER_INPUT:
    case LAYER_IDENTITY: break;
    }
    if (net->qat && !integer)
        qat_output(net, l);
}

void layer_backward(Net *net, Layer *l)
{
    if (!l->own_y || !l->dy_set)
        return; /* nothing flows back through it */
    if (net->qat)
        qat_backward_mask(net, l);
    const float *w = net->qat && l->q.integer ? l->q.w_fq : l->weight.w;
    switch (l->kind) {
    case LAYER_CONV: conv_backward(net, l, w); break;
    case LAYER_LINEAR: linear_backward(net, l, w); break;
    case LAYER_BN: bn_backward(net, l); break;
    case LAYER_ACT: act_backward(net, l); break;
    case LAYER_MAXPOOL: maxpool_backward(net, l); break;
    case LAYER_AVGPOOL:
    case LAYER_GAP: avgpool_pass(net, l, true); break;
    case LAYER_FLATTEN: pass_backward(net, l, NULL); break;
    case LAYER_DROPOUT: pass_backward(net, l, l->save); break;
    case LAYER_ADD: add_backward(net, l); break;
    case LAYER_CONCAT: concat_pass(net, l, true); break;
    case LAYER_INPUT:
    case LAYER_IDENTITY: break;
    }
}
