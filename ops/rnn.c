/* rnn.c - RNN, GRU and LSTM (opsets 1 to 14): directions forward, reverse and
 * bidirectional, every activation of the spec with its alpha/beta, clip, sequence_lens,
 * initial_h/initial_c, peepholes, GRU's linear_before_reset, LSTM's input_forget, the
 * layout attribute (opset 14) and the optional outputs Y, Y_h, Y_c.
 *
 * The time loop is written once (nn_rnn_impl.h) and instantiated twice: in float with the
 * packed GEMM for the input and recurrent products (float32 tensors), and in double with
 * naive products (the oracle, and the path for float16, bfloat16 and double). Steps of a
 * batch row past its sequence length leave Y at 0 and the state unchanged; a reverse
 * direction runs each row from its own last valid step back to step 0. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "ops/registry.h"

enum { RNN_KIND_RNN, RNN_KIND_GRU, RNN_KIND_LSTM };
enum { RNN_DIR_FORWARD, RNN_DIR_REVERSE, RNN_DIR_BIDI };
/* Which weight a product uses: W, all of R, GRU's R for z and r, GRU's R for h. */
enum { RNN_MM_W, RNN_MM_R, RNN_MM_RZR, RNN_MM_RH };

typedef enum RnnActKind {
    RA_RELU,
    RA_TANH,
    RA_SIGMOID,
    RA_AFFINE,
    RA_LEAKYRELU,
    RA_THRESHOLDEDRELU,
    RA_SCALEDTANH,
    RA_HARDSIGMOID,
    RA_ELU,
    RA_SOFTSIGN,
    RA_SOFTPLUS
} RnnActKind;

typedef struct RnnAct {
    RnnActKind kind;
    double alpha, beta;
} RnnAct;

typedef struct RnnParams {
    int kind;
    int64_t hidden_size; /* 0 when absent (taken from W) */
    int direction, n_dir;
    int64_t layout, linear_before_reset, input_forget;
    bool has_clip;
    double clip;
    RnnAct acts[2][3]; /* per direction: RNN f; GRU f, g; LSTM f, g, h */
} RnnParams;

/* Sizes of one run and the parameters, shared by both instantiations. */
typedef struct RnnRun {
    const RnnParams *p;
    int64_t T, B, I, H, D, G;
    /* float path only */
    const struct RnnState *state;
    void *gemm_ws;
    struct ThreadPool *pool;
} RnnRun;

/* ---- activations (ONNX RNN spec, "Activation functions") ---- */

static const struct {
    const char *name;
    RnnActKind kind;
    int uses; /* 0: no parameter, 1: alpha, 2: alpha and beta */
    double alpha, beta;
} act_table[] = {
    {"relu", RA_RELU, 0, 0, 0},
    {"tanh", RA_TANH, 0, 0, 0},
    {"sigmoid", RA_SIGMOID, 0, 0, 0},
    {"affine", RA_AFFINE, 2, 1.0, 0.0},
    {"leakyrelu", RA_LEAKYRELU, 1, 0.01, 0},
    {"thresholdedrelu", RA_THRESHOLDEDRELU, 1, 1.0, 0},
    {"scaledtanh", RA_SCALEDTANH, 2, 1.0, 1.0},
    {"hardsigmoid", RA_HARDSIGMOID, 2, 0.2, 0.5},
    {"elu", RA_ELU, 1, 1.0, 0},
    {"softsign", RA_SOFTSIGN, 0, 0, 0},
    {"softplus", RA_SOFTPLUS, 0, 0, 0},
};

static double rnn_act(const RnnAct *a, double x)
{
    switch (a->kind) {
    case RA_RELU:
        return x > 0 ? x : 0.0;
    case RA_TANH:
        return tanh(x);
    case RA_SIGMOID:
        return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case RA_AFFINE:
        return a->alpha * x + a->beta;
    case RA_LEAKYRELU:
        return x >= 0 ? x : a->alpha * x;
    case RA_THRESHOLDEDRELU:
        return x > a->alpha ? x : 0.0;
    case RA_SCALEDTANH:
        return a->alpha * tanh(a->beta * x);
    case RA_HARDSIGMOID: {
        double v = a->alpha * x + a->beta;
        return v < 0 ? 0.0 : v > 1 ? 1.0 : v;
    }
    case RA_ELU:
        return x >= 0 ? x : a->alpha * (exp(x) - 1.0);
    case RA_SOFTSIGN:
        return x / (1.0 + fabs(x));
    case RA_SOFTPLUS:
        return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    }
    return x;
}

static int act_lookup(const char *s)
{
    char low[32];
    size_t n = strlen(s);
    if (n >= sizeof low)
        return -1;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)s[i]);
    for (size_t i = 0; i < CRUN_ARRAY_LEN(act_table); i++)
        if (strcmp(act_table[i].name, low) == 0)
            return (int)i;
    return -1;
}

/* ---- parsing ---- */

static crun_status parse_acts(Node *n, RnnParams *p, int per, Diag *d)
{
    static const char *const defaults[3][3] = {{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
    const Attr *names = node_attr(n, "activations");
    const Attr *alpha = node_attr(n, "activation_alpha"), *beta = node_attr(n, "activation_beta");
    if ((names && names->type != ATTR_STRINGS) || (alpha && alpha->type != ATTR_FLOATS) ||
        (beta && beta->type != ATTR_FLOATS))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "activations must be strings, their alpha/beta floats");
    int count = names ? names->n : per;
    if (count != per && count != per * p->n_dir)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "activations has %d entries, expected %d", count,
                         per * p->n_dir);
    int ia = 0, ib = 0;
    for (int k = 0; k < count; k++) {
        const char *s = names ? names->strings[k] : defaults[p->kind][k];
        int t = act_lookup(s);
        if (t < 0)
            return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "activation '%s' is not supported", s);
        RnnAct a = {act_table[t].kind, act_table[t].alpha, act_table[t].beta};
        /* alpha and beta values go, in order, to the activations that take them. */
        if (act_table[t].uses >= 1 && alpha && ia < alpha->n)
            a.alpha = alpha->floats[ia++];
        if (act_table[t].uses >= 2 && beta && ib < beta->n)
            a.beta = beta->floats[ib++];
        p->acts[k / per][k % per] = a;
    }
    if (count == per && p->n_dir == 2)
        memcpy(p->acts[1], p->acts[0], sizeof p->acts[0]);
    return CRUN_OK;
}

static crun_status parse_rnn_common(Node *n, Diag *d, int kind)
{
    RnnParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->kind = kind;
    const char *dir = "forward";
    float clip = 0.0f;
    crun_status st = attr_get_int(n, "hidden_size", 0, &p->hidden_size, d);
    if (st == CRUN_OK)
        st = attr_get_string(n, "direction", "forward", &dir, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "layout", 0, &p->layout, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "linear_before_reset", 0, &p->linear_before_reset, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "input_forget", 0, &p->input_forget, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "clip", 0.0f, &clip, d);
    if (st != CRUN_OK)
        return st;
    if (strcmp(dir, "forward") == 0 || strcmp(dir, "foward") == 0) /* GRU-1's default is misspelt */
        p->direction = RNN_DIR_FORWARD;
    else if (strcmp(dir, "reverse") == 0)
        p->direction = RNN_DIR_REVERSE;
    else if (strcmp(dir, "bidirectional") == 0)
        p->direction = RNN_DIR_BIDI;
    else
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "direction '%s' is not valid", dir);
    p->n_dir = p->direction == RNN_DIR_BIDI ? 2 : 1;
    if (p->hidden_size < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "hidden_size must be >= 0");
    if (p->layout != 0 && p->layout != 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "layout must be 0 or 1");
    if (node_attr(n, "clip")) {
        if (!(clip > 0.0f))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "clip must be > 0");
        p->has_clip = true;
        p->clip = clip;
    }
    return parse_acts(n, p, kind == RNN_KIND_RNN ? 1 : kind == RNN_KIND_GRU ? 2 : 3, d);
}

static crun_status parse_rnn(Node *n, Diag *d)
{
    return parse_rnn_common(n, d, RNN_KIND_RNN);
}
static crun_status parse_gru(Node *n, Diag *d)
{
    return parse_rnn_common(n, d, RNN_KIND_GRU);
}
static crun_status parse_lstm(Node *n, Diag *d)
{
    return parse_rnn_common(n, d, RNN_KIND_LSTM);
}

/* ---- shapes ---- */

static int gates_of(int kind)
{
    return kind == RNN_KIND_RNN ? 1 : kind == RNN_KIND_GRU ? 3 : 4;
}

static const Tensor *opt_in(const Tensor *const *in, int n_in, int i)
{
    return i < n_in ? in[i] : NULL;
}

/* Sizes from X and W (infer checked them). */
static void run_dims(const RnnParams *p, const Tensor *x, const Tensor *w, RnnRun *r)
{
    r->p = p;
    r->T = x->dims[p->layout ? 1 : 0];
    r->B = x->dims[p->layout ? 0 : 1];
    r->I = x->dims[2];
    r->D = p->n_dir;
    r->G = gates_of(p->kind);
    r->H = w->dims[1] / r->G;
}

static bool dims_are(const Tensor *t, int rank, int64_t a, int64_t b, int64_t c)
{
    int64_t want[3] = {a, b, c};
    return shape_equal(t->dims, t->rank, want, rank);
}

static crun_status rnn_infer(InferCtx *c)
{
    const RnnParams *p = c->params;
    const Tensor *x = c->in[0], *w = c->in[1], *r = c->in[2];
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, x->rank == 3 && w->rank == 3 && r->rank == 3, "X, W and R must have rank 3");
    NODE_CHECK(c, w->dtype == x->dtype && r->dtype == x->dtype, "W and R must have X's type");
    int64_t G = gates_of(p->kind), D = p->n_dir;
    NODE_CHECK(c, w->dims[0] == D && w->dims[1] % G == 0, "W must be [%lld, %lld*hidden_size, input_size]",
               (long long)D, (long long)G);
    int64_t H = w->dims[1] / G;
    NODE_CHECK(c, !p->hidden_size || p->hidden_size == H, "W has hidden size %lld but hidden_size is %lld",
               (long long)H, (long long)p->hidden_size);
    int64_t T = x->dims[p->layout ? 1 : 0], B = x->dims[p->layout ? 0 : 1];
    NODE_CHECK(c, w->dims[2] == x->dims[2], "W's input size %lld differs from X's %lld", (long long)w->dims[2],
               (long long)x->dims[2]);
    NODE_CHECK(c, dims_are(r, 3, D, G * H, H), "R must be [%lld, %lld, %lld]", (long long)D, (long long)(G * H),
               (long long)H);
    const Tensor *b = opt_in(c->in, c->n_in, 3), *sl = opt_in(c->in, c->n_in, 4);
    const Tensor *h0 = opt_in(c->in, c->n_in, 5), *c0 = opt_in(c->in, c->n_in, 6), *pp = opt_in(c->in, c->n_in, 7);
    if (b)
        NODE_CHECK(c, b->dtype == x->dtype && dims_are(b, 2, D, 2 * G * H, 0), "B must be [%lld, %lld]", (long long)D,
                   (long long)(2 * G * H));
    if (sl)
        NODE_CHECK(c, (sl->dtype == CRUN_DTYPE_INT32 || sl->dtype == CRUN_DTYPE_INT64) && dims_are(sl, 1, B, 0, 0),
                   "sequence_lens must be an int32 tensor of %lld values", (long long)B);
    int64_t s0 = p->layout ? B : D, s1 = p->layout ? D : B;
    if (h0)
        NODE_CHECK(c, h0->dtype == x->dtype && dims_are(h0, 3, s0, s1, H), "initial_h must be [%lld, %lld, %lld]",
                   (long long)s0, (long long)s1, (long long)H);
    if (c0)
        NODE_CHECK(c, c0->dtype == x->dtype && dims_are(c0, 3, s0, s1, H), "initial_c must be [%lld, %lld, %lld]",
                   (long long)s0, (long long)s1, (long long)H);
    if (pp)
        NODE_CHECK(c, pp->dtype == x->dtype && dims_are(pp, 2, D, 3 * H, 0), "P must be [%lld, %lld]", (long long)D,
                   (long long)(3 * H));
    int64_t ydims[4] = {T, D, B, H}, ylayout[4] = {B, T, D, H}, sdims[3] = {s0, s1, H};
    if (c->out[0])
        out_set(c->out[0], x->dtype, 4, p->layout ? ylayout : ydims);
    for (int k = 1; k < c->n_out && k < 3; k++)
        if (c->out[k])
            out_set(c->out[k], x->dtype, 3, sdims);
    return CRUN_OK;
}

static int64_t rnn_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    RnnRun r;
    run_dims(n->params, in[0], in[1], &r);
    return 2 * r.T * r.B * r.D * r.G * r.H * (r.I + r.H);
}

/* Offsets of X rows, Y rows and state rows for either layout. */
static inline int64_t rnn_x_row(const RnnRun *r, int64_t t, int64_t b)
{
    return r->p->layout ? b * r->T + t : t * r->B + b;
}
static inline int64_t rnn_y_off(const RnnRun *r, int64_t t, int64_t d, int64_t b)
{
    return (r->p->layout ? (b * r->T + t) * r->D + d : (t * r->D + d) * r->B + b) * r->H;
}
static inline int64_t rnn_state_off(const RnnRun *r, int64_t d, int64_t b)
{
    return (r->p->layout ? b * r->D + d : d * r->B + b) * r->H;
}

/* Reads sequence_lens (or T for all) into lens; fails on a length outside [0, T]. */
static crun_status read_lens(const KernelCtx *k, const RnnRun *r, int64_t *lens)
{
    const Tensor *sl = opt_in(k->in, k->n_in, 4);
    for (int64_t b = 0; b < r->B; b++) {
        lens[b] = sl ? tensor_get_int(sl, b) : r->T;
        if (lens[b] < 0 || lens[b] > r->T)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "sequence_lens[%lld] = %lld is outside [0, %lld]",
                             (long long)b, (long long)lens[b], (long long)r->T);
    }
    return CRUN_OK;
}

/* N and K of each product, and the offset of its weight rows within a direction. */
static void mm_shape(const RnnRun *r, int which, int64_t *N, int64_t *K, int64_t *row0)
{
    int64_t GH = r->G * r->H;
    *row0 = 0;
    switch (which) {
    case RNN_MM_W:
        *N = GH, *K = r->I;
        break;
    case RNN_MM_R:
        *N = GH, *K = r->H;
        break;
    case RNN_MM_RZR:
        *N = 2 * r->H, *K = r->H;
        break;
    default:
        *N = r->H, *K = r->H, *row0 = 2 * r->H;
        break;
    }
}

/* ================= double instantiation: naive products (the oracle) ================= */

#define RNN_T double
#define RNN_SFX ref
#include "ops/nn_rnn_impl.h"
#undef RNN_T
#undef RNN_SFX

static void mm_ref(const RnnRun *r, const Bufs_ref *b, int which, int d, int64_t M, const double *a, int64_t lda,
                   double *c, int64_t ldc, const double *bias)
{
    int64_t N, K, row0;
    mm_shape(r, which, &N, &K, &row0);
    const double *wm = (which == RNN_MM_W ? b->w + d * r->G * r->H * r->I : b->r + d * r->G * r->H * r->H) + row0 * K;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = bias ? bias[j] : 0.0;
            for (int64_t kk = 0; kk < K; kk++)
                s += a[i * lda + kk] * wm[j * K + kk];
            c[i * ldc + j] = s;
        }
}

/* Scratch of the reference, in doubles: converted inputs and outputs, then the loop's. */
typedef struct RefLayout {
    size_t x, w, r, b, p, h0, c0, y, yh, yc, xw, hr, h, c, tmp, hrh, bsum, lens, total;
} RefLayout;

static void ref_layout(const PrepCtx *c, const RnnRun *r, RefLayout *l)
{
    size_t at = 0;
    int64_t GH = r->G * r->H, DBH = r->D * r->B * r->H;
#define TAKE(f, n) (l->f = at, at += align_up((size_t)(n) * sizeof(double), CRUN_ALIGN))
    TAKE(x, tensor_numel(c->in[0]));
    TAKE(w, tensor_numel(c->in[1]));
    TAKE(r, tensor_numel(c->in[2]));
    TAKE(b, r->D * 2 * GH);
    TAKE(p, r->D * 3 * r->H);
    TAKE(h0, DBH);
    TAKE(c0, DBH);
    TAKE(y, r->T * DBH);
    TAKE(yh, DBH);
    TAKE(yc, DBH);
    TAKE(xw, r->T * r->B * GH);
    TAKE(hr, r->B * GH);
    TAKE(h, r->B * r->H);
    TAKE(c, r->B * r->H);
    TAKE(tmp, r->B * r->H);
    TAKE(hrh, r->B * r->H);
    TAKE(bsum, GH);
    TAKE(lens, r->B);
#undef TAKE
    l->total = at;
}

static crun_status rnn_ref_prepare(PrepCtx *c)
{
    RnnRun r;
    RefLayout l;
    run_dims(c->params, c->in[0], c->in[1], &r);
    ref_layout(c, &r, &l);
    c->ws_bytes = l.total;
    return CRUN_OK;
}

static double *load_double(const Tensor *t, char *ws, size_t off)
{
    if (!t)
        return NULL;
    double *d = (double *)(ws + off);
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        d[i] = tensor_get_double(t, i);
    return d;
}

static void store_double(Tensor *t, const double *v)
{
    if (!t)
        return;
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        tensor_set_double(t, i, v[i]);
}

/* The reference kernel (any float type, in double; float32 models run rnn_f32_gemm):
 * built for size. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("Os")))
#endif
static crun_status rnn_ref_run(KernelCtx *k)
{
    RnnRun r;
    RefLayout l;
    run_dims(k->params, k->in[0], k->in[1], &r);
    PrepCtx pc = {.in = k->in, .n_in = k->n_in};
    ref_layout(&pc, &r, &l);
    char *ws = k->ws;
    Tensor *y = k->out[0], *yh = k->n_out > 1 ? k->out[1] : NULL, *yc = k->n_out > 2 ? k->out[2] : NULL;
    Bufs_ref b = {.x = load_double(k->in[0], ws, l.x),
                  .w = load_double(k->in[1], ws, l.w),
                  .r = load_double(k->in[2], ws, l.r),
                  .bias = load_double(opt_in(k->in, k->n_in, 3), ws, l.b),
                  .p = load_double(opt_in(k->in, k->n_in, 7), ws, l.p),
                  .h0 = load_double(opt_in(k->in, k->n_in, 5), ws, l.h0),
                  .c0 = load_double(opt_in(k->in, k->n_in, 6), ws, l.c0),
                  .y = y ? (double *)(ws + l.y) : NULL,
                  .yh = yh ? (double *)(ws + l.yh) : NULL,
                  .yc = yc ? (double *)(ws + l.yc) : NULL,
                  .xw = (double *)(ws + l.xw),
                  .hr = (double *)(ws + l.hr),
                  .h = (double *)(ws + l.h),
                  .c = (double *)(ws + l.c),
                  .tmp = (double *)(ws + l.tmp),
                  .hrh = (double *)(ws + l.hrh),
                  .bsum = (double *)(ws + l.bsum),
                  .lens = (int64_t *)(ws + l.lens)};
    crun_status st = read_lens(k, &r, (int64_t *)(ws + l.lens));
    if (st != CRUN_OK)
        return st;
    if (b.y)
        memset(b.y, 0, (size_t)tensor_numel(y) * sizeof(double));
    compute_ref(&r, &b);
    store_double(y, b.y);
    store_double(yh, b.yh);
    store_double(yc, b.yc);
    return CRUN_OK;
}

/* ================= float instantiation: products through the packed GEMM ================= */

/* Packed weights (when W and/or R are constant): per direction, W^T as one B operand and R^T
 * as one (RNN, LSTM) or two (GRU: z and r, then h). */
typedef struct RnnState {
    const GemmUkernel *uk;
    bool w_packed, r_packed;
    size_t w_off[2], r_off[2], rh_off[2]; /* float offsets into data */
    size_t scratch_floats;                /* the loop's scratch, ahead of the GEMM's */
    float data[];
} RnnState;

#define RNN_T float
#define RNN_SFX f32
#include "ops/nn_rnn_impl.h"
#undef RNN_T
#undef RNN_SFX

static const float *packed_weight(const RnnRun *r, int which, int d)
{
    const RnnState *s = r->state;
    if (which == RNN_MM_W)
        return s->w_packed ? s->data + s->w_off[d] : NULL;
    if (!s->r_packed)
        return NULL;
    return s->data + (which == RNN_MM_RH ? s->rh_off[d] : s->r_off[d]);
}

static void mm_f32(const RnnRun *r, const Bufs_f32 *b, int which, int d, int64_t M, const float *a, int64_t lda,
                   float *c, int64_t ldc, const float *bias)
{
    int64_t N, K, row0;
    mm_shape(r, which, &N, &K, &row0);
    const float *wm = (which == RNN_MM_W ? b->w + d * r->G * r->H * r->I : b->r + d * r->G * r->H * r->H) + row0 * K;
    GemmMatrix am = {a, lda, false}, bm = {wm, K, true};
    GemmArgs ga = {.M = M,
                   .N = N,
                   .K = K,
                   .uk = r->state->uk,
                   .a = am,
                   .b_packed = packed_weight(r, which, d),
                   .pack_b = gemm_pack_b_matrix,
                   .b_src = &bm,
                   .c = c,
                   .ldc = ldc,
                   .alpha = 1.0f,
                   .beta = 1.0f};
    if (bias) {
        ga.bias_kind = GEMM_BIAS_COL;
        ga.bias = bias;
    }
    gemm_run(&ga, r->gemm_ws, r->pool);
}

/* Scratch floats of the float loop for B batch rows, T steps. */
static size_t f32_scratch(const RnnRun *r)
{
    int64_t GH = r->G * r->H, BH = r->B * r->H;
    size_t n = 0;
    int64_t parts[] = {r->T * r->B * GH, r->B * GH, BH, BH, BH, BH, GH, 2 * r->B /* lens as int64 */};
    for (size_t i = 0; i < CRUN_ARRAY_LEN(parts); i++)
        n += align_up((size_t)parts[i], CRUN_ALIGN / sizeof(float));
    return n;
}

static void pack_weights(const RnnRun *r, const Tensor *w, const Tensor *rr, RnnState *s)
{
    const GemmUkernel *uk = s->uk;
    size_t at = 0;
    int64_t GH = r->G * r->H, H = r->H;
    for (int d = 0; d < r->D; d++) {
        if (s->w_packed) {
            GemmMatrix m = {(const float *)w->data + d * GH * r->I, r->I, true};
            s->w_off[d] = at;
            gemm_pack_b_full(uk, gemm_pack_b_matrix, &m, r->I, GH, s->data + at);
            at += gemm_packed_b_bytes(uk, r->I, GH) / sizeof(float);
        }
        if (s->r_packed) {
            const float *rd = (const float *)rr->data + d * GH * H;
            int64_t n_first = r->p->kind == RNN_KIND_GRU ? 2 * H : GH;
            GemmMatrix m = {rd, H, true};
            s->r_off[d] = at;
            gemm_pack_b_full(uk, gemm_pack_b_matrix, &m, H, n_first, s->data + at);
            at += gemm_packed_b_bytes(uk, H, n_first) / sizeof(float);
            if (r->p->kind == RNN_KIND_GRU) {
                GemmMatrix mh = {rd + 2 * H * H, H, true};
                s->rh_off[d] = at;
                gemm_pack_b_full(uk, gemm_pack_b_matrix, &mh, H, H, s->data + at);
                at += gemm_packed_b_bytes(uk, H, H) / sizeof(float);
            }
        }
    }
}

static crun_status rnn_f32_prepare(PrepCtx *c)
{
    RnnRun r;
    run_dims(c->params, c->in[0], c->in[1], &r);
    const GemmUkernel *uk = gemm_ukernel_best();
    bool wp = c->in[1]->data != NULL, rp = c->in[2]->data != NULL;
    int64_t GH = r.G * r.H;
    size_t bytes = 0;
    if (wp)
        bytes += gemm_packed_b_bytes(uk, r.I, GH) * (size_t)r.D;
    if (rp)
        bytes += (r.p->kind == RNN_KIND_GRU ? gemm_packed_b_bytes(uk, r.H, 2 * r.H) + gemm_packed_b_bytes(uk, r.H, r.H)
                                            : gemm_packed_b_bytes(uk, r.H, GH)) *
                 (size_t)r.D;
    bytes += sizeof(RnnState);
    RnnState *s = mem_alloc_aligned(bytes);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    memset(s, 0, sizeof *s);
    s->uk = uk;
    s->w_packed = wp;
    s->r_packed = rp;
    r.state = s;
    pack_weights(&r, c->in[1], c->in[2], s);
    s->scratch_floats = f32_scratch(&r);
    /* The largest product's scratch (B packed per block covers every case). */
    GemmArgs ga = {.M = CRUN_MAX(r.T * r.B, r.B), .N = GH, .K = CRUN_MAX(r.I, r.H), .uk = uk};
    c->state = s;
    c->state_bytes = bytes;
    c->ws_bytes = s->scratch_floats * sizeof(float) + gemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

/* The next n floats of scratch (64-byte aligned). */
static float *take(float **at, int64_t n)
{
    float *p = *at;
    *at += align_up((size_t)n, CRUN_ALIGN / sizeof(float));
    return p;
}

static crun_status rnn_f32_run(KernelCtx *k)
{
    RnnRun r;
    run_dims(k->params, k->in[0], k->in[1], &r);
    const RnnState *s = k->state;
    r.state = s;
    r.pool = k->pool;
    r.gemm_ws = (float *)k->ws + s->scratch_floats;
    int64_t GH = r.G * r.H, BH = r.B * r.H;
    float *at = k->ws;
    const Tensor *bias = opt_in(k->in, k->n_in, 3), *pp = opt_in(k->in, k->n_in, 7);
    const Tensor *h0 = opt_in(k->in, k->n_in, 5), *c0 = opt_in(k->in, k->n_in, 6);
    Tensor *y = k->out[0], *yh = k->n_out > 1 ? k->out[1] : NULL, *yc = k->n_out > 2 ? k->out[2] : NULL;
    Bufs_f32 b = {.x = k->in[0]->data,
                  .w = k->in[1]->data,
                  .r = k->in[2]->data,
                  .bias = bias ? bias->data : NULL,
                  .p = pp ? pp->data : NULL,
                  .h0 = h0 ? h0->data : NULL,
                  .c0 = c0 ? c0->data : NULL,
                  .y = y ? y->data : NULL,
                  .yh = yh ? yh->data : NULL,
                  .yc = yc ? yc->data : NULL};
    b.xw = take(&at, r.T * r.B * GH);
    b.hr = take(&at, r.B * GH);
    b.h = take(&at, BH);
    b.c = take(&at, BH);
    b.tmp = take(&at, BH);
    b.hrh = take(&at, BH);
    b.bsum = take(&at, GH);
    int64_t *lens = (int64_t *)take(&at, 2 * r.B);
    b.lens = lens;
    crun_status st = read_lens(k, &r, lens);
    if (st != CRUN_OK)
        return st;
    if (b.y)
        memset(b.y, 0, tensor_bytes(y));
    compute_f32(&r, &b);
    return CRUN_OK;
}

static bool f32_applies(const PrepCtx *c, const void *kdata)
{
    return c->in[0]->dtype == CRUN_DTYPE_FLOAT;
}

static const KernelVariant rnn_kernels[] = {
    {"rnn_f32_gemm", ISA_SCALAR, f32_applies, rnn_f32_prepare, rnn_f32_run, NULL},
    {"rnn_ref", ISA_SCALAR, NULL, rnn_ref_prepare, rnn_ref_run, NULL},
    {0}};
const OpDesc op_RNN = {"", "RNN", 3, 6, 0, 2, 0, parse_rnn, rnn_infer, rnn_flops, rnn_kernels};
const OpDesc op_GRU = {"", "GRU", 3, 6, 0, 2, 0, parse_gru, rnn_infer, rnn_flops, rnn_kernels};
const OpDesc op_LSTM = {"", "LSTM", 3, 8, 0, 3, 0, parse_lstm, rnn_infer, rnn_flops, rnn_kernels};
