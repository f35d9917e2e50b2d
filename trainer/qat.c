/* qat.c - quantization-aware training whose fake quantization is the runtime's int8
 * arithmetic (quant/quant.h), so the exported QDQ model computes exactly what was trained.
 *
 * Where the quantization points go is not decided here: the float model is exported and
 * handed to the same QDQ planner the exporter (and `crun quantize`) uses, and its targets
 * become this net's observers. A Conv or Linear between two targets then runs as the
 * runtime's QLinearConv/QLinearMatMul does: the input's integers minus zero point, int8
 * weights (symmetric, per output channel), exact int32 sums plus an int32 bias, one float
 * multiply by x_scale * w_scale / y_scale, round half to even, clamp (the fused ReLU or
 * ReLU6 included). The integer sums come from the float GEMM on integer-valued operands:
 * every partial sum of at most QAT_EXACT_K products of |x| <= 255 and |w| <= 127 stays
 * below 2^24, so it is exact in float whatever the order; longer sums are cut into such
 * slices and added in int32. Backward is the straight-through estimator: gradients pass
 * where the value was inside the quantized range. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_qdq.h"
#include "quant/quant.h"
#include "runtime/threadpool.h"
#include "trainer/trainer.h"

#define QAT_EXACT_K 512

/* EMA weight of a new batch's range (as common QAT observers use). */
#define OBS_MOMENTUM 0.01f

/* Layers that read layer i (folded ones, which nothing reads, do not count). */
static int consumers(const Net *net, int i, int *only)
{
    int n = 0;
    for (int j = i + 1; j < net->n; j++)
        for (int k = 0; k < net->layers[j].n_in && net->layers[j].kind != LAYER_IDENTITY; k++)
            if (net->layers[j].in[k] == i) {
                *only = j;
                n++;
                break;
            }
    return n;
}

/* l becomes an identity of its input (its buffers freed). */
static void drop_layer(Layer *l)
{
    mem_free(l->y), mem_free(l->dy), mem_free(l->save);
    l->y = l->dy = l->save = NULL;
    l->own_y = false;
    l->kind = LAYER_IDENTITY;
}

void qat_fold(Net *net, bool weights)
{
    for (int i = 1; i < net->n; i++) {
        Layer *bn = &net->layers[i], *p = &net->layers[bn->in[0]];
        int only = -1;
        if (bn->kind != LAYER_BN || (p->kind != LAYER_CONV && p->kind != LAYER_LINEAR) ||
            consumers(net, bn->in[0], &only) != 1)
            continue;
        int64_t per = p->weight.n / p->cout;
        for (int c = 0; weights && c < p->cout; c++) {
            float k = bn->weight.w[c] / sqrtf(bn->run_var[c] + bn->eps);
            for (int64_t j = 0; j < per; j++)
                p->weight.w[c * per + j] *= k;
            float b = p->bias_on ? p->bias.w[c] : 0.0f;
            p->bias.w[c] = (b - bn->run_mean[c]) * k + bn->bias.w[c];
        }
        p->bias_on = true;
        /* the moments belong to the unfolded weights */
        memset(p->weight.m, 0, (size_t)p->weight.n * sizeof(float));
        memset(p->weight.v, 0, (size_t)p->weight.n * sizeof(float));
        memset(p->bias.m, 0, (size_t)p->bias.n * sizeof(float));
        memset(p->bias.v, 0, (size_t)p->bias.n * sizeof(float));
        drop_layer(bn);
    }
    for (int i = 1; i < net->n; i++)
        if (net->layers[i].kind == LAYER_DROPOUT)
            drop_layer(&net->layers[i]);
    /* Readers of a folded layer read its input, so a conv's consumer is what follows it. */
    for (int i = 1; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_in; k++)
            while (net->layers[net->layers[i].in[k]].kind == LAYER_IDENTITY)
                net->layers[i].in[k] = net->layers[net->layers[i].in[k]].in[0];
}

/* ---- observers ---- */

static void obs_params(Observer *o) { quant_act_params(o->lo, o->hi, &o->scale, &o->zp); }

/* Takes a batch's [lo, hi] (min/max when calibrating, else the moving average). */
static void obs_update(Net *net, Observer *o, float lo, float hi)
{
    if (o->frozen || !(net->training || net->calibrating))
        return;
    if (!o->seen || (net->calibrating && !net->training)) {
        o->lo = o->seen ? fminf(o->lo, lo) : lo;
        o->hi = o->seen ? fmaxf(o->hi, hi) : hi;
        o->seen = true;
    } else {
        o->lo += OBS_MOMENTUM * (lo - o->lo);
        o->hi += OBS_MOMENTUM * (hi - o->hi);
    }
    obs_params(o);
}

void qat_freeze(Net *net)
{
    for (int i = 0; i < net->n_obs; i++)
        net->obs[i].frozen = true;
}

void qat_reset_observers(Net *net)
{
    for (int i = 0; i < net->n_obs; i++) {
        net->obs[i].seen = net->obs[i].frozen = false;
        net->obs[i].lo = net->obs[i].hi = 0;
        obs_params(&net->obs[i]);
    }
}

/* ---- the quantization points, from the QDQ planner ---- */

static int find_obs(const Net *net, const char *name)
{
    for (int i = 0; i < net->n_obs; i++)
        if (!strcmp(net->obs[i].name, name))
            return i;
    return -1;
}

/* The layer that produces the exported tensor called name (aliases excluded). */
static Layer *producer_of(Net *net, const char *name)
{
    for (int i = 0; i < net->n; i++)
        if (!strcmp(net_tensor_name(net, i), name) && net->layers[i].kind != LAYER_IDENTITY &&
            net->layers[i].kind != LAYER_DROPOUT)
            return &net->layers[i];
    return NULL;
}

static bool add_observers(Net *net, const QdqPlan *p)
{
    net->obs = calloc((size_t)p->n_targets + 1, sizeof *net->obs);
    if (!net->obs)
        return false;
    for (int t = 0; t < p->n_targets; t++) {
        const QdqTarget *tg = &p->targets[t];
        Layer *l = producer_of(net, tg->name);
        if (!l)
            continue;
        const char *src = tg->tie >= 0 ? p->targets[tg->tie].name : tg->name;
        int o = find_obs(net, src);
        if (o < 0) {
            o = net->n_obs++;
            snprintf(net->obs[o].name, sizeof net->obs[o].name, "%s", src);
            obs_params(&net->obs[o]);
        }
        l->q.out_obs = o;
        l->q.quantize = tg->tie < 0;
    }
    return true;
}

static float *floats(int64_t n) { return mem_calloc_aligned((size_t)(n > 0 ? n : 1) * sizeof(float)); }

/* A Conv/Linear whose output (or its ReLU/ReLU6's) is quantized runs in integers; the
 * activation becomes its clamp and an alias of its output. */
static bool make_integer(Net *net, Layer *l)
{
    Layer *src = layer_owner(net, &net->layers[l->in[0]]);
    int only = -1, idx = (int)(l - net->layers);
    Layer *act = NULL;
    if (consumers(net, idx, &only) == 1 && net->layers[only].kind == LAYER_ACT &&
        (net->layers[only].act == TACT_RELU || net->layers[only].act == TACT_RELU6))
        act = &net->layers[only];
    Layer *outl = act ? act : l;
    if (src->q.out_obs < 0 || outl->q.out_obs < 0 || !outl->q.quantize)
        return true; /* stays float, as the runtime leaves it */
    LayerQuant *q = &l->q;
    q->integer = true;
    q->in_obs = src->q.out_obs;
    q->out_obs = outl->q.out_obs;
    q->lo = act ? 0.0f : -INFINITY;
    q->hi = act && act->act == TACT_RELU6 ? 6.0f : INFINITY;
    if (act) {
        outl->q.out_obs = -1;
        outl->q.quantize = false;
        mem_free(act->y), mem_free(act->dy);
        act->y = act->dy = NULL;
        act->own_y = false;
    }
    int64_t in = tshape_size(net->layers[l->in[0]].out), out = (int64_t)net->batch * tshape_size(l->out);
    q->w_scale = floats(l->cout);
    q->wq = floats(l->weight.n);
    q->w_fq = floats(l->weight.n);
    q->bias_q = mem_calloc_aligned((size_t)l->cout * sizeof(int32_t));
    q->xq = floats((int64_t)net->batch * in);
    q->yi = floats(out);
    q->acc = mem_calloc_aligned((size_t)out * sizeof(int32_t));
    q->mask = floats(out);
    return q->w_scale && q->wq && q->w_fq && q->bias_q && q->xq && q->yi && q->acc && q->mask;
}

crun_status qat_check(const Net *net, Diag *d)
{
    /* integer_sums cuts a sum into whole input channels of k*k taps each */
    for (int i = 0; i < net->n; i++) {
        const Layer *l = &net->layers[i];
        if (l->kind == LAYER_CONV && (int64_t)l->k * l->k > QAT_EXACT_K)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT,
                             "layer %d: a %dx%d convolution has more taps than int8 training sums exactly (%d)",
                             i + 1, l->k, l->k, QAT_EXACT_K);
    }
    return CRUN_OK;
}

crun_status qat_enable(Net *net, Diag *d)
{
    if (net->qat)
        return CRUN_OK;
    crun_status st = qat_check(net, d);
    if (st != CRUN_OK)
        return st;
    QdqPlan p;
    st = net_qdq_plan(net, &p, d);
    if (st != CRUN_OK)
        return st;
    for (int i = 0; i < net->n; i++)
        net->layers[i].q.out_obs = net->layers[i].q.in_obs = -1;
    bool ok = add_observers(net, &p);
    qdq_plan_free(&p);
    for (int i = 0; ok && i < net->n; i++) {
        Layer *l = &net->layers[i];
        if (l->kind == LAYER_CONV || l->kind == LAYER_LINEAR)
            ok = make_integer(net, l);
    }
    for (int i = 0; ok && i < net->n; i++) {
        Layer *l = &net->layers[i];
        if (l->q.quantize && l->own_y && !l->q.integer && l->q.out_obs >= 0 && !l->q.mask)
            ok = (l->q.mask = floats((int64_t)net->batch * tshape_size(l->out))) != NULL;
    }
    if (!ok)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for quantization-aware training");
    net->qat = true;
    return CRUN_OK;
}

/* ---- forward ---- */

void qat_output(Net *net, Layer *l)
{
    if (l->q.out_obs < 0 || !l->q.quantize || !l->own_y)
        return;
    Observer *o = &net->obs[l->q.out_obs];
    int64_t n = net->cur * tshape_size(l->out);
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        lo = l->y[i] < lo ? l->y[i] : lo;
        hi = l->y[i] > hi ? l->y[i] : hi;
    }
    obs_update(net, o, lo, hi);
    float rlo = quant_dequantize(QUANT_U8.lo, o->scale, o->zp), rhi = quant_dequantize(QUANT_U8.hi, o->scale, o->zp);
    for (int64_t i = 0; i < n; i++) {
        float v = l->y[i];
        if (l->q.mask)
            l->q.mask[i] = v >= rlo && v <= rhi ? 1.0f : 0.0f;
        l->y[i] = quant_dequantize(quant_quantize(v, o->scale, o->zp, QUANT_U8), o->scale, o->zp);
    }
}

/* The weights' int8 values per output channel, their dequantized copy and the bias. */
static void quantize_weights(Layer *l, float sx)
{
    LayerQuant *q = &l->q;
    int64_t per = l->weight.n / l->cout;
    for (int c = 0; c < l->cout; c++) {
        const float *w = l->weight.w + c * per;
        float mx = 0;
        for (int64_t j = 0; j < per; j++)
            mx = fmaxf(mx, fabsf(w[j]));
        float s = quant_weight_scale(mx);
        q->w_scale[c] = s;
        for (int64_t j = 0; j < per; j++) {
            float v = (float)quant_quantize(w[j], s, 0, QUANT_I8_SYM);
            q->wq[c * per + j] = v;
            q->w_fq[c * per + j] = v * s;
        }
        q->bias_q[c] = l->bias_on ? quant_bias_int32(l->bias.w[c], sx * s) : 0;
    }
}

/* Exact integer sums into q->acc: one slice straight from the float GEMM, more added in
 * int32. */
static void integer_sums(Net *net, Layer *l, int64_t n)
{
    LayerQuant *q = &l->q;
    bool conv = l->kind == LAYER_CONV;
    int64_t K = conv ? l->weight.n / l->cout : tshape_size(net->layers[l->in[0]].out);
    int64_t taps = conv ? (int64_t)l->k * l->k : 1, step = QAT_EXACT_K / taps;
    int64_t units = K / taps; /* input channels per group (conv) or features */
    for (int64_t u0 = 0; u0 < units; u0 += step) {
        int64_t u1 = u0 + step < units ? u0 + step : units;
        if (conv)
            conv_run(net, l, q->xq, q->wq, (int)u0, (int)(u1 - u0), NULL, q->yi);
        else
            linear_run(net, l, q->xq, q->wq, u0, u1, NULL, q->yi);
        for (int64_t i = 0; i < n; i++)
            q->acc[i] = (u0 ? q->acc[i] : 0) + (int32_t)q->yi[i];
    }
}

/* One integer layer's output pass over a chunk of samples: the observed range of the real
 * values (after the fused clamp), or, once the observer has taken it, the quantization. */
typedef struct IntJob {
    Net *net;
    Layer *l;
    const Observer *ox, *oy;
    const float *x;
    int64_t per_in, per_out, plane;
    float lo[TRAIN_CHUNKS], hi[TRAIN_CHUNKS];
    QuantRange r;
} IntJob;

static void int_in_task(void *ctx, int64_t t, int thread)
{
    IntJob *j = ctx;
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    float s = j->ox->scale;
    /* x holds dequantized values s * (q - z): dividing gives back q - z after rounding */
    for (int64_t i = s0 * j->per_in; i < s1 * j->per_in; i++)
        j->l->q.xq[i] = quant_rint_small(j->x[i] / s);
}

static void int_range_task(void *ctx, int64_t t, int thread)
{
    IntJob *j = ctx;
    const LayerQuant *q = &j->l->q;
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t sc = (int64_t)s0 * j->l->cout; sc < (int64_t)s1 * j->l->cout; sc++) {
        int c = (int)(sc % j->l->cout);
        float k = j->ox->scale * q->w_scale[c];
        const int32_t *acc = q->acc + sc * j->plane;
        for (int64_t i = 0; i < j->plane; i++) {
            float v = (float)(acc[i] + q->bias_q[c]) * k;
            v = v < q->lo ? q->lo : v > q->hi ? q->hi : v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    j->lo[t] = lo, j->hi[t] = hi;
}

static void int_out_task(void *ctx, int64_t t, int thread)
{
    IntJob *j = ctx;
    Layer *l = j->l;
    LayerQuant *q = &l->q;
    int s0, s1;
    layer_chunk_range(j->net, t, &s0, &s1);
    float sy = j->oy->scale;
    int32_t zy = j->oy->zp;
    for (int64_t sc = (int64_t)s0 * l->cout; sc < (int64_t)s1 * l->cout; sc++) {
        int c = (int)(sc % l->cout);
        float m = quant_multiplier(j->ox->scale, q->w_scale[c], sy);
        int64_t o = sc * j->plane;
        for (int64_t i = o; i < o + j->plane; i++) {
            float v = (float)(q->acc[i] + q->bias_q[c]) * m, u = v + (float)zy;
            q->mask[i] = u >= (float)j->r.lo - 0.5f && u <= (float)j->r.hi + 0.5f ? 1.0f : 0.0f;
            l->y[i] = quant_dequantize(quant_round_sat(v, zy, j->r), sy, zy);
        }
    }
}

void qat_forward_integer(Net *net, Layer *l)
{
    LayerQuant *q = &l->q;
    Observer *oy = &net->obs[q->out_obs];
    IntJob j = {.net = net, .l = l, .ox = &net->obs[q->in_obs], .oy = oy,
                .x = layer_owner(net, &net->layers[l->in[0]])->y,
                .per_in = tshape_size(net->layers[l->in[0]].out), .per_out = tshape_size(l->out),
                .plane = l->kind == LAYER_CONV ? (int64_t)l->out.h * l->out.w : 1};
    pool_for(net->pool, TRAIN_CHUNKS, int_in_task, &j);
    quantize_weights(l, j.ox->scale);
    integer_sums(net, l, net->cur * j.per_out);
    pool_for(net->pool, TRAIN_CHUNKS, int_range_task, &j);
    float lo = INFINITY, hi = -INFINITY;
    for (int t = 0; t < TRAIN_CHUNKS; t++)
        lo = j.lo[t] < lo ? j.lo[t] : lo, hi = j.hi[t] > hi ? j.hi[t] : hi;
    obs_update(net, oy, lo, hi);
    j.r = quant_clamp_range(QUANT_U8, q->lo, q->hi, oy->scale, oy->zp);
    pool_for(net->pool, TRAIN_CHUNKS, int_out_task, &j);
}

void qat_backward_mask(Net *net, Layer *l)
{
    if (!l->q.mask || !(l->q.integer || l->q.quantize))
        return;
    int64_t n = net->cur * tshape_size(l->out);
    for (int64_t i = 0; i < n; i++)
        l->dy[i] *= l->q.mask[i];
}

bool qat_ranges(const Net *net, const QdqPlan *p, float (*range)[2])
{
    for (int t = 0; t < p->n_targets; t++) {
        const char *src = p->targets[t].tie >= 0 ? p->targets[p->targets[t].tie].name : p->targets[t].name;
        int o = find_obs(net, src);
        if (o < 0)
            return false;
        range[t][0] = net->obs[o].lo;
        range[t][1] = net->obs[o].hi;
    }
    return true;
}
