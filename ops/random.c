/* random.c - ops that draw random numbers: RandomUniform(Like), RandomNormal(Like),
 * Bernoulli, Multinomial, and Dropout (which draws only in training mode).
 *
 * The generator is MT19937 seeded as numpy's legacy np.random.seed(int) seeds it, and
 * uniform doubles are made from two 32-bit draws as numpy does, so a seeded op gives the
 * values ONNX's reference (numpy) gives. Each step owns its generator; it advances on
 * every run (a seeded op gives a fresh, reproducible sequence per session). Without a
 * seed, each plan seeds from a process-wide counter and the clock. Draws are sequential
 * on one thread, so outputs never depend on the thread count. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "ops/registry.h"

/* ================= MT19937 ================= */

enum { MT_N = 624, MT_M = 397 };

typedef struct Mt {
    uint32_t s[MT_N];
    int i;
} Mt;

static void mt_seed(Mt *m, uint32_t seed)
{
    m->s[0] = seed;
    for (int i = 1; i < MT_N; i++)
        m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) + (uint32_t)i;
    m->i = MT_N;
}

static uint32_t mt_next(Mt *m)
{
    if (m->i >= MT_N) {
        for (int k = 0; k < MT_N; k++) {
            uint32_t y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % MT_N] & 0x7fffffffu);
            m->s[k] = m->s[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->i = 0;
    }
    uint32_t y = m->s[m->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

/* Uniform in [0, 1) with 53 random bits. */
static double mt_double(Mt *m)
{
    uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

/* Standard normal by the polar method (both values of a pair are used). */
static double mt_normal(Mt *m, double *spare, bool *has_spare)
{
    if (*has_spare) {
        *has_spare = false;
        return *spare;
    }
    double u, v, r;
    do {
        u = 2.0 * mt_double(m) - 1.0;
        v = 2.0 * mt_double(m) - 1.0;
        r = u * u + v * v;
    } while (r >= 1.0 || r == 0.0);
    double f = sqrt(-2.0 * log(r) / r);
    *spare = f * u;
    *has_spare = true;
    return f * v;
}

/* ================= parameters and generator state ================= */

typedef struct RandParams {
    bool has_seed;
    float seed;
    float a, b;         /* low/high or mean/scale; Dropout's ratio before opset 12 */
    int64_t dtype;      /* 0: the input's type (Like ops, Bernoulli) */
    int64_t sample_size; /* Multinomial */
    int rank;
    int64_t shape[CRUN_MAX_RANK];
} RandParams;

/* The step's generator. It lives in the prepare block, which belongs to this step of
 * this plan alone (a session runs one step at a time), so the run may advance it. */
typedef struct RandState {
    Mt mt;
    double spare;
    bool has_spare;
} RandState;

static atomic_uint_fast32_t unseeded_count;

static crun_status rand_prepare(PrepCtx *c)
{
    const RandParams *p = c->params;
    RandState *s = mem_alloc_aligned(sizeof *s);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    uint32_t seed = p->has_seed ? (uint32_t)(int64_t)p->seed
                                : (uint32_t)time(NULL) ^ (uint32_t)(atomic_fetch_add(&unseeded_count, 1) * 2654435761u);
    mt_seed(&s->mt, seed);
    s->has_spare = false;
    c->state = s;
    c->state_bytes = sizeof *s;
    return CRUN_OK;
}

static RandState *rand_state(const KernelCtx *k) { return (RandState *)k->state; }

static crun_status parse_common(Node *n, Diag *d, RandParams **out)
{
    RandParams *p = params_alloc(n, sizeof *p, d);
    *out = p;
    if (!p)
        return d->status;
    p->has_seed = node_attr(n, "seed") != NULL;
    crun_status st = attr_get_float(n, "seed", 0.0f, &p->seed, d);
    if (st == CRUN_OK && p->has_seed && !(fabsf(p->seed) < 4294967296.0f))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "seed %g is out of range", p->seed);
    return st;
}

static bool is_real(crun_dtype t)
{
    return t == CRUN_DTYPE_FLOAT || t == CRUN_DTYPE_DOUBLE || t == CRUN_DTYPE_FLOAT16 || t == CRUN_DTYPE_BFLOAT16;
}

/* ================= RandomUniform(Like), RandomNormal(Like) ================= */

static crun_status parse_random(Node *n, Diag *d)
{
    RandParams *p = NULL;
    crun_status st = parse_common(n, d, &p);
    bool normal = strstr(n->op_type, "Normal") != NULL, like = strstr(n->op_type, "Like") != NULL;
    if (st == CRUN_OK)
        st = attr_get_float(n, normal ? "mean" : "low", 0.0f, &p->a, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, normal ? "scale" : "high", 1.0f, &p->b, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "dtype", like ? 0 : CRUN_DTYPE_FLOAT, &p->dtype, d);
    if (st == CRUN_OK && p->dtype && !is_real((crun_dtype)p->dtype))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "dtype %lld is not a floating type", (long long)p->dtype);
    if (st == CRUN_OK && !like) {
        if (!node_attr(n, "shape"))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'shape' is required");
        st = attr_get_ints(n, "shape", p->shape, CRUN_MAX_RANK, &p->rank, d);
        for (int i = 0; st == CRUN_OK && i < p->rank; i++)
            if (p->shape[i] < 0 || p->shape[i] > CRUN_MAX_NUMEL)
                return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "shape[%d] = %lld is invalid", i,
                                 (long long)p->shape[i]);
    }
    return st;
}

static crun_status random_infer(InferCtx *c)
{
    const RandParams *p = c->params;
    if (c->n_in > 0) { /* the Like ops: the input's shape, and its type by default */
        const Tensor *x = c->in[0];
        crun_dtype t = p->dtype ? (crun_dtype)p->dtype : x->dtype;
        NODE_CHECK(c, is_real(t), "the output type %s is not a floating type", dtype_name(t));
        out_set(c->out[0], t, x->rank, x->dims);
        return CRUN_OK;
    }
    NODE_CHECK(c, shape_numel(p->shape, p->rank) >= 0, "shape is too large");
    out_set(c->out[0], (crun_dtype)p->dtype, p->rank, p->shape);
    return CRUN_OK;
}

static crun_status random_run(KernelCtx *k)
{
    const RandParams *p = k->params;
    RandState *s = rand_state(k);
    Tensor *y = k->out[0];
    bool normal = strstr(k->node->op_type, "Normal") != NULL;
    int64_t n = tensor_numel(y);
    for (int64_t i = 0; i < n; i++) {
        double v = normal ? p->a + p->b * mt_normal(&s->mt, &s->spare, &s->has_spare)
                          : p->a + ((double)p->b - p->a) * mt_double(&s->mt);
        tensor_set_double(y, i, v);
    }
    return CRUN_OK;
}

static const KernelVariant random_kernels[] = {{"random_ref", ISA_SCALAR, NULL, rand_prepare, random_run, NULL},
                                               {0}};

const OpDesc op_RandomUniform = {"", "RandomUniform", 0, 0, 1, 1, OPF_NO_FOLD, parse_random, random_infer, NULL,
                                 random_kernels};
const OpDesc op_RandomNormal = {"", "RandomNormal", 0, 0, 1, 1, OPF_NO_FOLD, parse_random, random_infer, NULL,
                                random_kernels};
const OpDesc op_RandomUniformLike = {"", "RandomUniformLike", 1, 1, 1, 1, OPF_NO_FOLD | OPF_SHAPE_ONLY, parse_random,
                                     random_infer, NULL, random_kernels};
const OpDesc op_RandomNormalLike = {"", "RandomNormalLike", 1, 1, 1, 1, OPF_NO_FOLD | OPF_SHAPE_ONLY, parse_random,
                                    random_infer, NULL, random_kernels};

/* ================= Bernoulli ================= */

static crun_status parse_bernoulli(Node *n, Diag *d)
{
    RandParams *p = NULL;
    crun_status st = parse_common(n, d, &p);
    if (st == CRUN_OK)
        st = attr_get_int(n, "dtype", 0, &p->dtype, d);
    if (st == CRUN_OK && p->dtype && (!dtype_is_valid(p->dtype) || p->dtype == CRUN_DTYPE_STRING ||
                                      p->dtype == CRUN_DTYPE_COMPLEX64 || p->dtype == CRUN_DTYPE_COMPLEX128))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "dtype %lld is not supported", (long long)p->dtype);
    return st;
}

static crun_status bernoulli_infer(InferCtx *c)
{
    const RandParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_real(x->dtype), "input is %s, expected a floating type", dtype_name(x->dtype));
    out_set(c->out[0], p->dtype ? (crun_dtype)p->dtype : x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

/* One draw with probability p of 1, made as numpy's binomial(1, p) makes it (inversion
 * on the smaller of p and 1 - p, with its exp(log(q)) rounding), so seeded outputs equal
 * the reference's. */
static int bernoulli_draw(Mt *m, double p)
{
    if (!(p > 0.0))
        return 0; /* numpy draws nothing for p == 0 */
    bool flip = p > 0.5;
    double q = 1.0 - (flip ? 1.0 - p : p);
    int x = mt_double(m) > exp(log(q));
    return flip ? 1 - x : x;
}

static crun_status bernoulli_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    RandState *s = rand_state(k);
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        double p = tensor_get_double(x, i);
        if (!(p >= 0.0 && p <= 1.0))
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "probability %g at element %lld is not in [0, 1]", p,
                             (long long)i);
        tensor_set_int(y, i, bernoulli_draw(&s->mt, p));
    }
    return CRUN_OK;
}

static const KernelVariant bernoulli_kernels[] = {
    {"bernoulli_ref", ISA_SCALAR, NULL, rand_prepare, bernoulli_run, NULL}, {0}};

const OpDesc op_Bernoulli = {"", "Bernoulli", 1, 1, 1, 1, OPF_NO_FOLD, parse_bernoulli, bernoulli_infer, NULL,
                             bernoulli_kernels};

/* ================= Multinomial ================= */

static crun_status parse_multinomial(Node *n, Diag *d)
{
    RandParams *p = NULL;
    crun_status st = parse_common(n, d, &p);
    if (st == CRUN_OK)
        st = attr_get_int(n, "dtype", CRUN_DTYPE_INT32, &p->dtype, d);
    if (st == CRUN_OK && p->dtype != CRUN_DTYPE_INT32 && p->dtype != CRUN_DTYPE_INT64)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "dtype must be int32 or int64 (got %lld)", (long long)p->dtype);
    if (st == CRUN_OK)
        st = attr_get_int(n, "sample_size", 1, &p->sample_size, d);
    if (st == CRUN_OK && (p->sample_size < 1 || p->sample_size > CRUN_MAX_NUMEL))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "sample_size %lld is invalid", (long long)p->sample_size);
    return st;
}

static crun_status multinomial_infer(InferCtx *c)
{
    const RandParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_real(x->dtype) && x->rank == 2, "input must be [batch, classes] of a floating type");
    NODE_CHECK(c, x->dims[1] > 0, "input has no classes");
    int64_t dims[2] = {x->dims[0], p->sample_size};
    out_set(c->out[0], (crun_dtype)p->dtype, 2, dims);
    return CRUN_OK;
}

static crun_status multinomial_prepare(PrepCtx *c)
{
    c->ws_bytes = (size_t)c->in[0]->dims[1] * sizeof(double);
    return rand_prepare(c);
}

/* Each row holds unnormalised log-probabilities: sample from exp(x - max) by inverting
 * the cumulative sum. */
static crun_status multinomial_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    const RandParams *p = k->params;
    RandState *s = rand_state(k);
    double *cum = k->ws;
    int64_t rows = x->dims[0], classes = x->dims[1];
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < classes; j++)
            mx = fmax(mx, tensor_get_double(x, r * classes + j));
        double total = 0.0;
        for (int64_t j = 0; j < classes; j++) {
            double v = tensor_get_double(x, r * classes + j);
            total += isfinite(mx) && v == v ? exp(v - mx) : 0.0;
            cum[j] = total;
        }
        if (!(total > 0.0) || !isfinite(total))
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "row %lld has no finite probabilities", (long long)r);
        for (int64_t t = 0; t < p->sample_size; t++) {
            double u = mt_double(&s->mt) * total;
            int64_t lo = 0, hi = classes - 1; /* first j with cum[j] > u */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (cum[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            tensor_set_int(y, r * p->sample_size + t, lo);
        }
    }
    return CRUN_OK;
}

static const KernelVariant multinomial_kernels[] = {
    {"multinomial_ref", ISA_SCALAR, NULL, multinomial_prepare, multinomial_run, NULL}, {0}};

const OpDesc op_Multinomial = {"", "Multinomial", 1, 1, 1, 1, OPF_NO_FOLD, parse_multinomial, multinomial_infer,
                               NULL, multinomial_kernels};

/* ================= Dropout ================= */

/* Inference (training_mode absent or false, and always before opset 12): the output is
 * the input and the mask all true. Training mode zeroes each element with probability
 * ratio (drawn as numpy's uniform(0, 1) >= ratio keeps it) and scales the kept ones by
 * 1 / (1 - ratio). The identity pass removes the node when nothing reads the mask and
 * training is off, so this kernel runs only when it matters. */
static crun_status parse_dropout(Node *n, Diag *d)
{
    RandParams *p = NULL;
    crun_status st = parse_common(n, d, &p);
    if (st == CRUN_OK && n->opset < 12)
        st = attr_get_float(n, "ratio", 0.5f, &p->a, d);
    return st;
}

static crun_status dropout_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_real(x->dtype), "input is %s, expected a floating type", dtype_name(x->dtype));
    if (c->n_in > 1 && c->in[1])
        NODE_CHECK(c, is_real(c->in[1]->dtype) && tensor_numel(c->in[1]) == 1, "ratio must be one float");
    if (c->n_in > 2 && c->in[2])
        NODE_CHECK(c, c->in[2]->dtype == CRUN_DTYPE_BOOL && tensor_numel(c->in[2]) == 1,
                   "training_mode must be one bool");
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    if (c->n_out > 1 && c->out[1]) /* opset 1-9 masks have the input's type; later ones are bool */
        out_set(c->out[1], c->node->opset >= 10 ? CRUN_DTYPE_BOOL : x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

static crun_status dropout_run(KernelCtx *k)
{
    const RandParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0], *mask = k->n_out > 1 ? k->out[1] : NULL;
    bool training = k->n_in > 2 && k->in[2] && *(const uint8_t *)k->in[2]->data;
    double ratio = k->n_in > 1 && k->in[1] ? tensor_get_double(k->in[1], 0) : k->node->opset >= 12 ? 0.5 : p->a;
    if (training && !(ratio >= 0.0 && ratio < 1.0))
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "ratio %g is not in [0, 1)", ratio);
    int64_t n = tensor_numel(x);
    if (!training || ratio == 0.0) {
        if (y->data != x->data)
            memmove(y->data, x->data, tensor_bytes(x));
        for (int64_t i = 0; mask && i < n; i++)
            tensor_set_int(mask, i, 1);
        return CRUN_OK;
    }
    RandState *s = rand_state(k);
    double scale = 1.0 / (1.0 - ratio);
    for (int64_t i = 0; i < n; i++) {
        bool keep = mt_double(&s->mt) >= ratio;
        tensor_set_double(y, i, keep ? tensor_get_double(x, i) * scale : 0.0);
        if (mask)
            tensor_set_int(mask, i, keep);
    }
    return CRUN_OK;
}

static const KernelVariant dropout_kernels[] = {{"dropout_ref", ISA_SCALAR, NULL, rand_prepare, dropout_run, NULL},
                                                {0}};

const OpDesc op_Dropout = {"", "Dropout", 1, 3, 1, 2, OPF_NO_FOLD, parse_dropout, dropout_infer, NULL, dropout_kernels};
