/* net.c - the network: parsing the spec, shapes, buffers and initial weights, the
 * forward and backward walks, and the losses (see trainer.h). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "platforms/cpu.h"
#include "runtime/threadpool.h"
#include "trainer/trainer.h"

/* ---- parsing ---- */

typedef struct KindName {
    const char *word;
    LayerKind kind;
    TrainAct act;
} KindName;

static const KindName kind_names[] = {
    {"input", LAYER_INPUT, 0},          {"conv", LAYER_CONV, 0},          {"linear", LAYER_LINEAR, 0},
    {"bn", LAYER_BN, 0},                {"relu", LAYER_ACT, TACT_RELU},   {"relu6", LAYER_ACT, TACT_RELU6},
    {"leakyrelu", LAYER_ACT, TACT_LEAKY}, {"sigmoid", LAYER_ACT, TACT_SIGMOID}, {"tanh", LAYER_ACT, TACT_TANH},
    {"gelu", LAYER_ACT, TACT_GELU},     {"maxpool", LAYER_MAXPOOL, 0},    {"avgpool", LAYER_AVGPOOL, 0},
    {"gap", LAYER_GAP, 0},              {"flatten", LAYER_FLATTEN, 0},    {"dropout", LAYER_DROPOUT, 0},
    {"add", LAYER_ADD, 0},              {"concat", LAYER_CONCAT, 0},
};

static int find_layer(const Net *net, const char *name)
{
    for (int i = 0; i < net->n; i++)
        if (!strcmp(net->layers[i].name, name))
            return i;
    return -1;
}

static bool valid_name(const char *s)
{
    if (!*s || strlen(s) >= 32)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

typedef struct LineArgs {
    char *pos[4];
    int n_pos;
    char *key[8], *val[8];
    int n_kv;
} LineArgs;

static bool split_line(char *line, LineArgs *a)
{
    memset(a, 0, sizeof *a);
    for (char *tok = strtok(line, " \t\r"); tok; tok = strtok(NULL, " \t\r")) {
        char *eq = strchr(tok, '=');
        if (eq) {
            if (a->n_kv == 8)
                return false;
            *eq = 0;
            a->key[a->n_kv] = tok;
            a->val[a->n_kv++] = eq + 1;
        } else {
            if (a->n_pos == 4)
                return false;
            a->pos[a->n_pos++] = tok;
        }
    }
    return true;
}

static bool parse_int(const char *s, int lo, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > 1 << 20)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return false;
    *out = (float)v;
    return true;
}

/* Positional argument i as an int (def when absent and def >= 0). */
static bool pos_int(const LineArgs *a, int i, int lo, int def, int *out)
{
    if (i + 1 < a->n_pos)
        return parse_int(a->pos[i + 1], lo, out);
    *out = def;
    return def >= 0;
}

static crun_status parse_options(const LineArgs *a, Layer *l, int line, Diag *d)
{
    for (int i = 0; i < a->n_kv; i++) {
        const char *k = a->key[i], *v = a->val[i];
        bool ok;
        if (!strcmp(k, "name"))
            ok = valid_name(v) && snprintf(l->name, sizeof l->name, "%s", v) > 0;
        else if (!strcmp(k, "stride"))
            ok = parse_int(v, 1, &l->stride);
        else if (!strcmp(k, "pad"))
            ok = !strcmp(v, "same") ? (l->pad = l->k / 2, true) : parse_int(v, 0, &l->pad);
        else if (!strcmp(k, "groups"))
            ok = parse_int(v, 1, &l->groups);
        else if (!strcmp(k, "bias")) {
            int b = 0;
            ok = parse_int(v, 0, &b) && b <= 1;
            l->bias_on = b;
        } else
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: unknown option '%s'", line, k);
        if (!ok)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: bad value '%s' for %s", line, v, k);
    }
    return CRUN_OK;
}

/* The kind's positional arguments (before options, which may refer to k). */
static crun_status parse_positional(const LineArgs *a, Layer *l, int line, Diag *d)
{
    bool ok = true;
    int extra = a->n_pos - 1;
    switch (l->kind) {
    case LAYER_INPUT:
        ok = extra >= 1 && pos_int(a, 0, 1, -1, &l->out.c) && pos_int(a, 1, 1, 1, &l->out.h) &&
             pos_int(a, 2, 1, 1, &l->out.w);
        break;
    case LAYER_CONV:
        ok = extra == 2 && pos_int(a, 0, 1, -1, &l->cout) && pos_int(a, 1, 1, -1, &l->k);
        l->stride = 1, l->groups = 1, l->bias_on = true;
        break;
    case LAYER_LINEAR:
        ok = extra == 1 && pos_int(a, 0, 1, -1, &l->cout);
        l->bias_on = true;
        break;
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL:
        ok = extra == 1 && pos_int(a, 0, 1, -1, &l->k);
        l->stride = l->k;
        break;
    case LAYER_DROPOUT: ok = extra == 1 && parse_float(a->pos[1], 0.0f, 0.95f, &l->alpha); break;
    case LAYER_ACT:
        l->alpha = 0.01f;
        if (l->act == TACT_LEAKY && extra == 1)
            ok = parse_float(a->pos[1], 0.0f, 1.0f, &l->alpha);
        else
            ok = extra == 0;
        break;
    case LAYER_ADD:
    case LAYER_CONCAT: ok = extra == 1; break;
    default: ok = extra == 0; break;
    }
    return ok ? CRUN_OK : diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: wrong arguments for %s", line, a->pos[0]);
}

static crun_status parse_layer(Net *net, char *text, int line, Diag *d)
{
    LineArgs a;
    if (!split_line(text, &a) || !a.n_pos)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: too many words", line);
    const KindName *kn = NULL;
    for (size_t i = 0; i < CRUN_ARRAY_LEN(kind_names); i++)
        if (!strcmp(kind_names[i].word, a.pos[0]))
            kn = &kind_names[i];
    if (!kn)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: unknown layer '%s'", line, a.pos[0]);
    if (net->n == TRAIN_MAX_LAYERS)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: more than %d layers", line, TRAIN_MAX_LAYERS);
    if ((kn->kind == LAYER_INPUT) != (net->n == 0))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: the spec starts with one input line", line);
    Layer *grown = realloc(net->layers, (size_t)(net->n + 1) * sizeof *grown);
    if (!grown)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    net->layers = grown;
    Layer *l = &net->layers[net->n];
    memset(l, 0, sizeof *l);
    l->kind = kn->kind;
    l->act = kn->act;
    l->in[0] = net->n - 1, l->n_in = net->n ? 1 : 0;
    snprintf(l->name, sizeof l->name, net->n ? "%s%d" : "input", kn->word, net->n);
    crun_status st = parse_positional(&a, l, line, d);
    if (st == CRUN_OK)
        st = parse_options(&a, l, line, d);
    if (st != CRUN_OK)
        return st;
    if (find_layer(net, l->name) >= 0 || (net->n && !strcmp(l->name, "input")) || !strcmp(l->name, "output"))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: layer name '%s' is taken", line, l->name);
    if (l->kind == LAYER_ADD || l->kind == LAYER_CONCAT) {
        l->in[1] = find_layer(net, a.pos[1]);
        l->n_in = 2;
        if (l->in[1] < 0)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "spec line %d: no earlier layer named '%s'", line, a.pos[1]);
    }
    net->n++;
    return CRUN_OK;
}

/* ---- shapes ---- */

static int pool_out(int n, int k, int stride, int pad) { return n + 2 * pad < k ? 0 : (n + 2 * pad - k) / stride + 1; }

static crun_status infer_shape(Net *net, Layer *l, Diag *d)
{
    TShape x = net->layers[l->in[0]].out;
    l->out = x;
    switch (l->kind) {
    case LAYER_CONV:
        if (x.c % l->groups || l->cout % l->groups)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: groups %d do not divide %d inputs and %d outputs",
                             l->name, l->groups, x.c, l->cout);
        l->out = (TShape){l->cout, pool_out(x.h, l->k, l->stride, l->pad), pool_out(x.w, l->k, l->stride, l->pad)};
        break;
    case LAYER_LINEAR:
        if (x.h != 1 || x.w != 1)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: linear needs a flat input (%dx%dx%d): add flatten",
                             l->name, x.c, x.h, x.w);
        l->out = (TShape){l->cout, 1, 1};
        break;
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL:
        if (l->pad >= l->k) /* a window all padding would have no value */
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: pad %d must be smaller than the kernel %d", l->name,
                             l->pad, l->k);
        l->out.h = pool_out(x.h, l->k, l->stride, l->pad);
        l->out.w = pool_out(x.w, l->k, l->stride, l->pad);
        break;
    case LAYER_GAP: l->out = (TShape){x.c, 1, 1}; break;
    case LAYER_FLATTEN: l->out = (TShape){(int)tshape_size(x), 1, 1}; break;
    case LAYER_ADD: {
        TShape y = net->layers[l->in[1]].out;
        if (x.c != y.c || x.h != y.h || x.w != y.w)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: adds %dx%dx%d and %dx%dx%d", l->name, x.c, x.h, x.w,
                             y.c, y.h, y.w);
        break;
    }
    case LAYER_CONCAT: {
        TShape y = net->layers[l->in[1]].out;
        if (x.h != y.h || x.w != y.w)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: concatenates %dx%d and %dx%d planes", l->name, x.h,
                             x.w, y.h, y.w);
        l->out.c = x.c + y.c;
        break;
    }
    default: break;
    }
    if (l->out.c <= 0 || l->out.h <= 0 || l->out.w <= 0 || tshape_size(l->out) > (1 << 26))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: the output would be %dx%dx%d", l->name, l->out.c,
                         l->out.h, l->out.w);
    return CRUN_OK;
}

crun_status net_parse(const char *text, Net *net, Diag *d)
{
    memset(net, 0, sizeof *net);
    char *copy = strdup(text);
    if (!copy)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    crun_status st = CRUN_OK;
    int line = 0;
    for (char *s = copy, *next; s && st == CRUN_OK; s = next) {
        next = strchr(s, '\n');
        if (next)
            *next++ = 0;
        line++;
        char *hash = strchr(s, '#');
        if (hash)
            *hash = 0;
        if (strspn(s, " \t\r") != strlen(s))
            st = parse_layer(net, s, line, d);
    }
    free(copy);
    if (st == CRUN_OK && !(net->spec = strdup(text)))
        st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == CRUN_OK && net->n < 2)
        st = diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "the spec has no layers after its input");
    for (int i = 1; st == CRUN_OK && i < net->n; i++)
        st = infer_shape(net, &net->layers[i], d);
    if (st != CRUN_OK)
        net_free(net);
    return st;
}

/* ---- buffers and initial weights ---- */

static float *alloc_floats(int64_t n) { return mem_calloc_aligned((size_t)(n > 0 ? n : 1) * sizeof(float)); }

static bool param_alloc(Param *p, int64_t n)
{
    p->n = n;
    p->w = alloc_floats(n), p->g = alloc_floats(n), p->m = alloc_floats(n), p->v = alloc_floats(n);
    return p->w && p->g && p->m && p->v;
}

static void param_free(Param *p)
{
    mem_free(p->w), mem_free(p->g), mem_free(p->m), mem_free(p->v);
    memset(p, 0, sizeof *p);
}

/* A uniform in [0, 1) and a standard normal from a splitmix64 stream. */
static double rng_uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(uint64_t *s)
{
    double u = rng_uniform(s), v = rng_uniform(s);
    return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(6.283185307179586 * v);
}

/* Whether the layer's output reaches a ReLU-family activation (through BatchNorm). */
static bool feeds_relu(const Net *net, int i)
{
    for (int j = i + 1; j < net->n; j++) {
        const Layer *c = &net->layers[j];
        if (c->in[0] != i)
            continue;
        if (c->kind == LAYER_BN)
            return feeds_relu(net, j);
        return c->kind == LAYER_ACT && (c->act == TACT_RELU || c->act == TACT_RELU6 || c->act == TACT_LEAKY);
    }
    return false;
}

static void init_weights(Net *net, int i, uint64_t *rng)
{
    Layer *l = &net->layers[i];
    int64_t fan_in = l->weight.n / l->cout;
    int64_t fan_out = l->kind == LAYER_CONV ? (int64_t)l->cout / l->groups * l->k * l->k : l->cout;
    if (feeds_relu(net, i)) { /* He: variance 2 / fan_in keeps ReLU outputs' scale */
        double sd = sqrt(2.0 / (double)fan_in);
        for (int64_t k = 0; k < l->weight.n; k++)
            l->weight.w[k] = (float)(sd * rng_normal(rng));
    } else { /* Xavier (Glorot) uniform */
        double lim = sqrt(6.0 / (double)(fan_in + fan_out));
        for (int64_t k = 0; k < l->weight.n; k++)
            l->weight.w[k] = (float)((2 * rng_uniform(rng) - 1) * lim);
    }
}

static bool alloc_layer(Net *net, int i)
{
    Layer *l = &net->layers[i];
    int64_t n = (int64_t)net->batch * tshape_size(l->out);
    l->own_y = l->kind != LAYER_IDENTITY;
    if (l->own_y && (!(l->y = alloc_floats(n)) || !(l->dy = alloc_floats(n))))
        return false;
    TShape x = i > 0 ? net->layers[l->in[0]].out : l->out;
    switch (l->kind) {
    case LAYER_CONV:
        return param_alloc(&l->weight, (int64_t)l->cout * (x.c / l->groups) * l->k * l->k) &&
               param_alloc(&l->bias, l->cout);
    case LAYER_LINEAR: return param_alloc(&l->weight, (int64_t)l->cout * x.c) && param_alloc(&l->bias, l->cout);
    case LAYER_BN:
        l->momentum = 0.1f, l->eps = 1e-5f;
        if (!param_alloc(&l->weight, l->out.c) || !param_alloc(&l->bias, l->out.c) ||
            !(l->run_mean = alloc_floats(l->out.c)) || !(l->run_var = alloc_floats(l->out.c)) ||
            !(l->stat = alloc_floats(2 * l->out.c)) || !(l->save = alloc_floats(n)))
            return false;
        for (int c = 0; c < l->out.c; c++)
            l->weight.w[c] = 1.0f, l->run_var[c] = 1.0f;
        return true;
    case LAYER_MAXPOOL: return (l->argmax = mem_calloc_aligned((size_t)n * sizeof(int32_t))) != NULL;
    case LAYER_DROPOUT: return (l->save = alloc_floats(n)) != NULL;
    default: return true;
    }
}

/* Per-thread scratch: a convolution's columns and their gradient plus GEMM workspace. */
static void size_scratch(Net *net)
{
    size_t most = 0, wmost = 0;
    for (int i = 1; i < net->n; i++) {
        const Layer *l = &net->layers[i];
        if (l->kind != LAYER_CONV)
            continue;
        TShape x = net->layers[l->in[0]].out;
        size_t cols = (size_t)(x.c / l->groups) * l->k * l->k * (size_t)l->out.h * l->out.w;
        most = CRUN_MAX(most, 2 * cols * sizeof(float));
        wmost = CRUN_MAX(wmost, (size_t)(l->weight.n + l->cout));
    }
    size_t a = CRUN_ALIGN;
    net->scratch_per = (most + a - 1) / a * a + (gemm_ws_bytes_max() + a - 1) / a * a;
    net->wpart_per = (wmost + 15) / 16 * 16;
}

static bool need_grad(const Net *net, int i)
{
    const Layer *l = &net->layers[i];
    for (int k = 0; k < l->n_in; k++)
        if (net->layers[l->in[k]].kind != LAYER_INPUT)
            return true;
    return false;
}

crun_status net_build(Net *net, int batch, uint64_t seed, int threads, Diag *d)
{
    net->batch = batch;
    net->seed = seed;
    net->threads = threads < 1 ? cpu_count() : threads;
    net->pool = pool_create(net->threads);
    if (!net->pool)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "cannot start %d threads", net->threads);
    uint64_t rng = seed;
    for (int i = 0; i < net->n; i++) {
        if (!alloc_layer(net, i))
            return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for layer %s", net->layers[i].name);
        net->layers[i].need_dx = i > 0 && need_grad(net, i);
        if (net->layers[i].kind == LAYER_CONV || net->layers[i].kind == LAYER_LINEAR)
            init_weights(net, i, &rng);
    }
    size_scratch(net);
    net->scratch = mem_alloc_aligned(net->scratch_per * (size_t)net->threads);
    net->wpart = alloc_floats((int64_t)(net->wpart_per * TRAIN_CHUNKS));
    if (!net->scratch || !net->wpart)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for scratch");
    return CRUN_OK;
}

static void quant_free(LayerQuant *q)
{
    mem_free(q->w_scale), mem_free(q->wq), mem_free(q->w_fq), mem_free(q->bias_q), mem_free(q->xq), mem_free(q->mask);
    mem_free(q->acc), mem_free(q->yi);
}

void net_free(Net *net)
{
    for (int i = 0; i < net->n; i++) {
        Layer *l = &net->layers[i];
        if (l->own_y)
            mem_free(l->y), mem_free(l->dy);
        param_free(&l->weight), param_free(&l->bias);
        mem_free(l->run_mean), mem_free(l->run_var), mem_free(l->save), mem_free(l->stat), mem_free(l->argmax);
        quant_free(&l->q);
    }
    free(net->layers);
    free(net->spec);
    free(net->obs);
    mem_free(net->scratch);
    mem_free(net->wpart);
    pool_free(net->pool);
    memset(net, 0, sizeof *net);
}

int net_params(Net *net, Param **out, int max)
{
    int n = 0;
    for (int i = 0; i < net->n; i++) {
        Layer *l = &net->layers[i];
        if (l->kind != LAYER_CONV && l->kind != LAYER_LINEAR && l->kind != LAYER_BN)
            continue;
        if (n < max)
            out[n] = &l->weight;
        n++;
        if (l->kind != LAYER_BN && !l->bias_on)
            continue;
        if (n < max)
            out[n] = &l->bias;
        n++;
    }
    return n;
}

int64_t net_param_count(Net *net)
{
    Param *p[TRAIN_MAX_PARAMS];
    int n = net_params(net, p, TRAIN_MAX_PARAMS);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += p[i]->n;
    return total;
}

/* ---- the walks ---- */

const float *net_forward(Net *net, const float *x, int cur)
{
    net->cur = cur;
    Layer *in = &net->layers[0];
    memcpy(in->y, x, (size_t)(cur * tshape_size(in->out)) * sizeof *x);
    for (int i = 0; i < net->n; i++)
        layer_forward(net, &net->layers[i]);
    Layer *last = &net->layers[net->n - 1];
    while (!last->own_y)
        last = &net->layers[last->in[0]];
    return last->y;
}

void net_backward(Net *net, const float *dlogits)
{
    for (int i = 0; i < net->n; i++) {
        Layer *l = &net->layers[i];
        l->dy_set = false;
        if (l->weight.g)
            memset(l->weight.g, 0, (size_t)l->weight.n * sizeof(float));
        if (l->bias.g)
            memset(l->bias.g, 0, (size_t)l->bias.n * sizeof(float));
    }
    Layer *last = &net->layers[net->n - 1];
    while (!last->own_y)
        last = &net->layers[last->in[0]];
    memcpy(last->dy, dlogits, (size_t)(net->cur * tshape_size(last->out)) * sizeof(float));
    last->dy_set = true;
    for (int i = net->n - 1; i > 0; i--)
        layer_backward(net, &net->layers[i]);
}

/* ---- losses ---- */

float loss_eval(TrainLoss kind, const float *out, int cur, int k, const int32_t *labels, const float *targets,
                float *grad, int64_t *correct)
{
    double total = 0;
    for (int s = 0; s < cur; s++) {
        const float *o = out + (int64_t)s * k;
        float *g = grad ? grad + (int64_t)s * k : NULL;
        if (kind == LOSS_MSE) {
            for (int j = 0; j < k; j++) {
                float e = o[j] - targets[(int64_t)s * k + j];
                total += (double)e * e / k;
                if (g)
                    g[j] = 2.0f * e / (float)(k * cur);
            }
            continue;
        }
        int best = 0;
        float mx = o[0];
        for (int j = 1; j < k; j++)
            if (o[j] > mx)
                mx = o[j], best = j;
        double sum = 0;
        for (int j = 0; j < k; j++)
            sum += exp((double)(o[j] - mx));
        total += log(sum) - (o[labels[s]] - mx);
        *correct += best == labels[s];
        for (int j = 0; g && j < k; j++)
            g[j] = (float)((exp((double)(o[j] - mx)) / sum - (j == labels[s])) / cur);
    }
    return (float)(total / cur);
}
