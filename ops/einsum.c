/* einsum.c - Einsum (opset 12) and Det (opset 11).
 *
 * Einsum: every axis gets a label (a letter, or one of the broadcast axes "..." stands
 * for); an input's stride for a label is the sum of the strides of its axes with that label,
 * so repeated labels read diagonals. The output walks its labels, and for each element the
 * labels absent from the output are summed over. Without "->" the output is "..." then the
 * letters used exactly once, in ASCII order (as numpy). Floats accumulate in double,
 * integers wrap in two's complement.
 *
 * Det: LU factorisation with partial pivoting, in double, per matrix. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/dtype_loops.h"
#include "ops/gemm.h"
#include "ops/registry.h"
#include "runtime/threadpool.h"

#define EIN_MAX_IN 16
#define EIN_LETTERS 52
#define EIN_LABELS (EIN_LETTERS + CRUN_MAX_RANK)
#define EIN_ELLIPSIS (-1)

typedef struct EinParams {
    size_t len;
    char eq[]; /* the equation without blanks */
} EinParams;

/* The equation applied to concrete shapes. */
typedef struct EinSpec {
    int n_in;
    int64_t dim[EIN_LABELS];
    int out_rank, n_red;
    int out_label[EIN_LABELS], red_label[EIN_LABELS];
    int64_t stride[EIN_MAX_IN][EIN_LABELS];
    uint8_t axes[EIN_MAX_IN][EIN_LABELS]; /* how many axes of input k carry the label */
} EinSpec;

static int letter_id(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a';
    if (ch >= 'A' && ch <= 'Z')
        return 26 + (ch - 'A');
    return -1;
}

/* ASCII order of letter ids (uppercase first), for the implicit output. */
static int ascii_of(int id)
{
    return id < 26 ? 'a' + id : 'A' + (id - 26);
}

/* Parses one term (up to a ',' or the end) into labels (EIN_ELLIPSIS for "..."). Returns
 * the characters consumed, or -1 on a syntax error. */
static int parse_term(const char *s, int *labels, int *count)
{
    int n = 0, i = 0;
    bool ell = false;
    while (s[i] && s[i] != ',' && s[i] != '-') {
        if (s[i] == '.') {
            if (ell || strncmp(s + i, "...", 3) != 0)
                return -1;
            ell = true;
            labels[n++] = EIN_ELLIPSIS;
            i += 3;
            continue;
        }
        if (letter_id(s[i]) < 0 || n >= CRUN_MAX_RANK + 1)
            return -1;
        labels[n++] = letter_id(s[i++]);
    }
    *count = n;
    return i;
}

static crun_status parse_einsum(Node *n, Diag *d)
{
    const char *eq = NULL;
    crun_status st = attr_get_string(n, "equation", "", &eq, d);
    if (st != CRUN_OK)
        return st;
    size_t len = strlen(eq);
    EinParams *p = params_alloc(n, sizeof *p + len + 1, d);
    if (!p)
        return d->status;
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (eq[i] != ' ' && eq[i] != '\t')
            p->eq[k++] = eq[i];
    p->eq[k] = 0;
    p->len = k;
    /* Syntax: terms separated by ',', optionally "->" and one output term. */
    const char *s = p->eq;
    int labels[CRUN_MAX_RANK + 2], cnt, terms = 0;
    for (;;) {
        int used = parse_term(s, labels, &cnt);
        if (used < 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "equation '%s' is not valid", eq);
        terms++;
        s += used;
        if (*s == ',') {
            s++;
            continue;
        }
        break;
    }
    if (*s == '-') {
        int used = s[1] == '>' ? parse_term(s + 2, labels, &cnt) : -1;
        if (used < 0 || s[2 + used])
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "equation '%s' has a bad output term", eq);
    } else if (*s) {
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "equation '%s' is not valid", eq);
    }
    int n_in = n->n_in - n->n_implicit;
    if (terms != n_in)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "equation has %d terms for %d inputs", terms, n_in);
    if (n_in > EIN_MAX_IN)
        return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "at most %d inputs are supported", EIN_MAX_IN);
    return CRUN_OK;
}

/* Builds the spec for these inputs; a message when the shapes do not fit the equation. */
static const char *ein_spec(const char *eq, int n_in, const Tensor *const *in, EinSpec *sp, char *buf, size_t bsz)
{
    memset(sp, 0, sizeof *sp);
    sp->n_in = n_in;
    int term_labels[EIN_MAX_IN][CRUN_MAX_RANK + 2], term_n[EIN_MAX_IN], occurs[EIN_LABELS] = {0};
    int E = 0; /* broadcast rank of "..." */
    bool any_ell = false;
    for (int i = 0; i < EIN_LABELS; i++)
        sp->dim[i] = -1;
    const char *s = eq;
    for (int k = 0; k < n_in; k++) {
        s += parse_term(s, term_labels[k], &term_n[k]) + 1; /* past the ',' (or the '-') */
        int letters = 0;
        bool ell = false;
        for (int a = 0; a < term_n[k]; a++)
            if (term_labels[k][a] == EIN_ELLIPSIS)
                ell = true;
            else
                letters++;
        int rank = in[k]->rank;
        if (ell ? rank < letters : rank != letters) {
            snprintf(buf, bsz, "input %d has rank %d but its term has %d labels%s", k, rank, letters,
                     ell ? " and ..." : "");
            return buf;
        }
        if (ell) {
            any_ell = true;
            E = CRUN_MAX(E, rank - letters);
        }
    }
    /* Dims and strides per label. */
    for (int k = 0; k < n_in; k++) {
        const Tensor *t = in[k];
        int64_t st[CRUN_MAX_RANK];
        shape_strides(t->dims, t->rank, st);
        int e = 0; /* axes under "..." */
        for (int a = 0; a < term_n[k]; a++)
            if (term_labels[k][a] == EIN_ELLIPSIS)
                e = t->rank - (term_n[k] - 1);
        int axis = 0;
        for (int a = 0; a < term_n[k]; a++) {
            int lab = term_labels[k][a];
            if (lab == EIN_ELLIPSIS) {
                for (int i = 0; i < e; i++, axis++) {
                    int id = EIN_LETTERS + (E - e + i);
                    int64_t dm = t->dims[axis];
                    sp->axes[k][id]++;
                    if (dm != 1) {
                        if (sp->dim[id] > 1 && sp->dim[id] != dm)
                            return "the axes under ... do not broadcast";
                        sp->dim[id] = dm;
                        sp->stride[k][id] += st[axis];
                    } else if (sp->dim[id] < 0) {
                        sp->dim[id] = 1;
                    }
                }
                continue;
            }
            int64_t dm = t->dims[axis];
            if (sp->dim[lab] >= 0 && sp->dim[lab] != dm) {
                snprintf(buf, bsz, "label '%c' has sizes %lld and %lld", ascii_of(lab), (long long)sp->dim[lab],
                         (long long)dm);
                return buf;
            }
            sp->dim[lab] = dm;
            sp->stride[k][lab] += st[axis];
            sp->axes[k][lab]++;
            occurs[lab]++;
            axis++;
        }
    }
    /* Output labels. */
    const char *arrow = strstr(eq, "->");
    if (arrow) {
        int labels[CRUN_MAX_RANK + 2], n;
        parse_term(arrow + 2, labels, &n);
        bool seen[EIN_LABELS] = {false};
        for (int a = 0; a < n; a++) {
            int lab = labels[a];
            if (lab == EIN_ELLIPSIS) {
                for (int i = 0; i < E; i++)
                    sp->out_label[sp->out_rank++] = EIN_LETTERS + i;
                continue;
            }
            if (sp->dim[lab] < 0 || seen[lab]) {
                snprintf(buf, bsz, "output label '%c' is %s", ascii_of(lab),
                         seen[lab] ? "repeated" : "not in any input");
                return buf;
            }
            seen[lab] = true;
            sp->out_label[sp->out_rank++] = lab;
        }
    } else {
        for (int i = 0; any_ell && i < E; i++)
            sp->out_label[sp->out_rank++] = EIN_LETTERS + i;
        for (int ch = 'A'; ch <= 'z'; ch++) {
            int lab = letter_id((char)ch);
            if (lab >= 0 && occurs[lab] == 1)
                sp->out_label[sp->out_rank++] = lab;
        }
    }
    if (sp->out_rank > CRUN_MAX_RANK)
        return "the output has too many axes";
    bool in_out[EIN_LABELS] = {false};
    for (int a = 0; a < sp->out_rank; a++)
        in_out[sp->out_label[a]] = true;
    double red = 1; /* in double: the product must be checked before it could overflow */
    for (int lab = 0; lab < EIN_LETTERS + E; lab++)
        if (sp->dim[lab] >= 0 && !in_out[lab]) {
            sp->red_label[sp->n_red++] = lab;
            red *= (double)sp->dim[lab];
        }
    if (red > (double)CRUN_MAX_NUMEL)
        return "the equation sums over more than 2^40 terms per output";
    return NULL;
}

static crun_status einsum_infer(InferCtx *c)
{
    const EinParams *p = c->params;
    crun_dtype dt = c->in[0]->dtype;
    NODE_CHECK(c, dtype_is_float(dt) || dtype_is_int(dt), "type %s is not supported", dtype_name(dt));
    for (int k = 0; k < c->n_in; k++)
        NODE_CHECK(c, c->in[k] && c->in[k]->dtype == dt, "input %d must have input 0's type", k);
    EinSpec sp;
    char buf[160];
    const char *err = ein_spec(p->eq, c->n_in, c->in, &sp, buf, sizeof buf);
    NODE_CHECK(c, !err, "%s", err);
    int64_t dims[CRUN_MAX_RANK];
    for (int a = 0; a < sp.out_rank; a++)
        dims[a] = sp.dim[sp.out_label[a]];
    out_set(c->out[0], dt, sp.out_rank, dims);
    return CRUN_OK;
}

static int64_t red_volume(const EinSpec *sp)
{
    int64_t v = 1;
    for (int r = 0; r < sp->n_red; r++)
        v *= sp->dim[sp->red_label[r]];
    return v;
}

static int64_t einsum_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    EinSpec sp;
    char buf[160];
    if (ein_spec(((const EinParams *)n->params)->eq, n->n_in, in, &sp, buf, sizeof buf))
        return 0;
    return tensor_numel(out[0]) * red_volume(&sp) * n->n_in;
}

typedef struct EinJob {
    const EinSpec *sp;
    const void *const *in;
    void *out;
    int64_t n_out, chunk;
} EinJob;

/* Offsets of output element o in every input (through the output labels). */
static void out_offsets(const EinSpec *sp, int64_t o, int64_t *off)
{
    for (int k = 0; k < sp->n_in; k++)
        off[k] = 0;
    for (int a = sp->out_rank - 1; a >= 0; a--) {
        int lab = sp->out_label[a];
        int64_t i = o % sp->dim[lab];
        o /= sp->dim[lab];
        for (int k = 0; k < sp->n_in; k++)
            off[k] += i * sp->stride[k][lab];
    }
}

/* Advances the reduction odometer idx, updating the per-input offsets. */
static inline void red_next(const EinSpec *sp, int64_t *idx, int64_t *off)
{
    for (int r = sp->n_red - 1; r >= 0; r--) {
        int lab = sp->red_label[r];
        if (++idx[r] < sp->dim[lab]) {
            for (int k = 0; k < sp->n_in; k++)
                off[k] += sp->stride[k][lab];
            return;
        }
        idx[r] = 0;
        for (int k = 0; k < sp->n_in; k++)
            off[k] -= (sp->dim[lab] - 1) * sp->stride[k][lab];
    }
}

/* One chunk of output elements; ACC is the accumulator type, CONV converts a loaded value to
 * it, OUT stores the sum. */
#define DEF_EIN(sfx, T, C, U, LD, ST, ACC, ZERO, CONV, OUT)                                                            \
    static void ein_##sfx(void *ctx, int64_t t, int thread)                                                            \
    {                                                                                                                  \
        const EinJob *j = ctx;                                                                                         \
        const EinSpec *sp = j->sp;                                                                                     \
        int64_t nred = red_volume(sp), end = CRUN_MIN(j->n_out, (t + 1) * j->chunk);                                   \
        for (int64_t o = t * j->chunk; o < end; o++) {                                                                 \
            int64_t off[EIN_MAX_IN], idx[EIN_LABELS] = {0};                                                            \
            out_offsets(sp, o, off);                                                                                   \
            ACC acc = ZERO;                                                                                            \
            for (int64_t r = 0; r < nred; r++) {                                                                       \
                ACC prod = (ACC)CONV(LD(((const T *)j->in[0])[off[0]]));                                               \
                for (int k = 1; k < sp->n_in; k++)                                                                     \
                    prod *= (ACC)CONV(LD(((const T *)j->in[k])[off[k]]));                                              \
                acc += prod;                                                                                           \
                red_next(sp, idx, off);                                                                                \
            }                                                                                                          \
            ((T *)j->out)[o] = OUT(ST, T, C, acc);                                                                     \
        }                                                                                                              \
    }
#define AS_DOUBLE(x) ((double)(x))
#define AS_U64(x) ((uint64_t)(int64_t)(x))
#define AS_U64U(x) ((uint64_t)(x))
#define OUT_FLOAT(ST, T, C, a) ST((C)(a))
#define OUT_INT(ST, T, C, a) ((T)(a))
#define EIN_FLOAT(sfx, T, C, U, LD, ST, ...) DEF_EIN(sfx, T, C, U, LD, ST, double, 0.0, AS_DOUBLE, OUT_FLOAT)
#define EIN_SIGNED(sfx, T, C, U, LD, ST, ...) DEF_EIN(sfx, T, C, U, LD, ST, uint64_t, 0u, AS_U64, OUT_INT)
#define EIN_UNSIGNED(sfx, T, C, U, LD, ST, ...) DEF_EIN(sfx, T, C, U, LD, ST, uint64_t, 0u, AS_U64U, OUT_INT)
FOR_FLOAT_TYPES(EIN_FLOAT, _)
FOR_SIGNED_TYPES(EIN_SIGNED, _)
FOR_UNSIGNED_TYPES(EIN_UNSIGNED, _)
#define EIN_ENTRY(sfx, ...) [DT_##sfx] = ein_##sfx,
static const PoolTaskFn ein_loops[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(EIN_ENTRY, _)};

static EinSpec *spec_alloc(PrepCtx *c, size_t extra)
{
    EinSpec *sp = mem_alloc_aligned(sizeof *sp + extra);
    if (!sp) {
        node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    char buf[160];
    const char *err = ein_spec(((const EinParams *)c->params)->eq, c->n_in, c->in, sp, buf, sizeof buf);
    assert(!err);
    (void)err;
    c->state = sp;
    c->state_bytes = sizeof *sp + extra;
    return sp;
}

static crun_status einsum_prepare(PrepCtx *c)
{
    return spec_alloc(c, 0) ? CRUN_OK : c->d->status;
}

static crun_status einsum_run(KernelCtx *k)
{
    const EinSpec *sp = k->state;
    const void *in[EIN_MAX_IN];
    for (int i = 0; i < sp->n_in; i++)
        in[i] = k->in[i]->data;
    int64_t n_out = tensor_numel(k->out[0]), work = CRUN_MAX(red_volume(sp), (int64_t)1);
    /* Chunks of about 64k multiply-adds. */
    int64_t chunk = CRUN_MAX((int64_t)1, ((int64_t)1 << 16) / work);
    EinJob j = {sp, in, k->out[0]->data, n_out, chunk};
    pool_for(k->pool, (n_out + chunk - 1) / chunk, ein_loops[k->out[0]->dtype], &j);
    return CRUN_OK;
}

static bool einsum_applies(const PrepCtx *c, const void *kdata)
{
    return ein_loops[c->in[0]->dtype] != NULL;
}

/* ---- float32 contraction of two inputs through the GEMM ----
 * Labels split into batch (in A, B and the output), M (A and output), N (B and output) and
 * K (A and B only). A and B are gathered into [batch][M][K] and [batch][K][N], multiplied
 * per batch, and the [batch][M][N] result is scattered into the output's label order. */

enum { EG_BATCH, EG_M, EG_N, EG_K, EG_ROLES };

typedef struct EinGemm {
    EinSpec sp;
    int n[EG_ROLES];
    int label[EG_ROLES][EIN_LABELS];
    int64_t size[EG_ROLES];              /* product of each role's dims */
    size_t a_floats, b_floats, c_floats; /* scratch, aligned */
} EinGemm;

/* Fills the roles; false when a label fits none (summed over in one input only, or a
 * diagonal). */
static bool gemm_roles(const EinSpec *sp, EinGemm *eg)
{
    if (sp->n_in != 2)
        return false;
    bool in_out[EIN_LABELS] = {false};
    for (int a = 0; a < sp->out_rank; a++)
        in_out[sp->out_label[a]] = true;
    memset(eg->n, 0, sizeof eg->n);
    for (int r = 0; r < EG_ROLES; r++)
        eg->size[r] = 1;
    for (int lab = 0; lab < EIN_LABELS; lab++) {
        if (sp->dim[lab] < 0)
            continue;
        int a = sp->axes[0][lab], b = sp->axes[1][lab];
        if (a > 1 || b > 1)
            return false;
        int role = a && b ? (in_out[lab] ? EG_BATCH : EG_K) : a ? EG_M : EG_N;
        if (!in_out[lab] && role != EG_K)
            return false;
        eg->label[role][eg->n[role]++] = lab;
        eg->size[role] *= sp->dim[lab];
    }
    return true;
}

static bool einsum_gemm_applies(const PrepCtx *c, const void *kdata)
{
    if (c->n_in != 2 || c->in[0]->dtype != CRUN_DTYPE_FLOAT)
        return false;
    EinGemm eg;
    char buf[160];
    if (ein_spec(((const EinParams *)c->params)->eq, c->n_in, c->in, &eg.sp, buf, sizeof buf))
        return false;
    /* Worth it only when there is a real product to do. */
    return gemm_roles(&eg.sp, &eg) && eg.size[EG_K] > 1 && eg.size[EG_M] * eg.size[EG_N] > 1;
}

static crun_status einsum_gemm_prepare(PrepCtx *c)
{
    EinGemm *eg = (EinGemm *)spec_alloc(c, sizeof(EinGemm) - sizeof(EinSpec));
    if (!eg)
        return c->d->status;
    gemm_roles(&eg->sp, eg);
    int64_t nb = eg->size[EG_BATCH], M = eg->size[EG_M], N = eg->size[EG_N], K = eg->size[EG_K];
    size_t al = CRUN_ALIGN / sizeof(float);
    eg->a_floats = align_up((size_t)(nb * M * K), al);
    eg->b_floats = align_up((size_t)(nb * K * N), al);
    eg->c_floats = align_up((size_t)(nb * M * N), al);
    GemmArgs ga = {.M = M, .N = N, .K = K, .uk = gemm_ukernel_best()};
    c->ws_bytes = (eg->a_floats + eg->b_floats + eg->c_floats) * sizeof(float) + gemm_ws_bytes(&ga, c->n_threads);
    return CRUN_OK;
}

/* dst (contiguous, labels lab[0..n) in that order, last fastest) = src at the given strides. */
static void gather(float *dst, const float *src, int n, const int *lab, const EinSpec *sp, const int64_t *stride)
{
    int64_t idx[EIN_LABELS] = {0}, off = 0, total = 1;
    for (int i = 0; i < n; i++)
        total *= sp->dim[lab[i]];
    for (int64_t t = 0; t < total; t++) {
        dst[t] = src[off];
        for (int i = n - 1; i >= 0; i--) {
            int l = lab[i];
            off += stride[l];
            if (++idx[i] < sp->dim[l])
                break;
            off -= stride[l] * sp->dim[l];
            idx[i] = 0;
        }
    }
}

static crun_status einsum_gemm_run(KernelCtx *k)
{
    const EinGemm *eg = k->state;
    const EinSpec *sp = &eg->sp;
    int64_t nb = eg->size[EG_BATCH], M = eg->size[EG_M], N = eg->size[EG_N], K = eg->size[EG_K];
    float *a = k->ws, *b = a + eg->a_floats, *c = b + eg->b_floats;
    void *gws = c + eg->c_floats;
    int order[EIN_LABELS], n;
    /* A as [batch][M][K], B as [batch][K][N] */
    n = 0;
    for (int r = 0; r < EG_ROLES; r++)
        if (r != EG_N)
            for (int i = 0; i < eg->n[r]; i++)
                order[n++] = eg->label[r][i];
    gather(a, k->in[0]->data, n, order, sp, sp->stride[0]);
    n = 0;
    for (int i = 0; i < eg->n[EG_BATCH]; i++)
        order[n++] = eg->label[EG_BATCH][i];
    for (int i = 0; i < eg->n[EG_K]; i++)
        order[n++] = eg->label[EG_K][i];
    for (int i = 0; i < eg->n[EG_N]; i++)
        order[n++] = eg->label[EG_N][i];
    gather(b, k->in[1]->data, n, order, sp, sp->stride[1]);
    for (int64_t bi = 0; bi < nb; bi++) {
        GemmMatrix am = {a + bi * M * K, K, false}, bm = {b + bi * K * N, N, false};
        GemmArgs ga = {.M = M,
                       .N = N,
                       .K = K,
                       .uk = gemm_ukernel_best(),
                       .a = am,
                       .pack_b = gemm_pack_b_matrix,
                       .b_src = &bm,
                       .c = c + bi * M * N,
                       .ldc = N,
                       .alpha = 1.0f,
                       .beta = 1.0f};
        gemm_run(&ga, gws, k->pool);
    }
    /* The output in its label order reads C at each label's stride there. */
    int64_t cstride[EIN_LABELS] = {0};
    int64_t inner[EG_ROLES] = {M * N, N, 1, 0};
    for (int r = 0; r < EG_K; r++) {
        int64_t s = inner[r];
        for (int i = eg->n[r] - 1; i >= 0; i--) {
            cstride[eg->label[r][i]] = s;
            s *= sp->dim[eg->label[r][i]];
        }
    }
    gather(k->out[0]->data, c, sp->out_rank, sp->out_label, sp, cstride);
    return CRUN_OK;
}

static const KernelVariant einsum_kernels[] = {
    {"einsum_f32_gemm", ISA_SCALAR, einsum_gemm_applies, einsum_gemm_prepare, einsum_gemm_run, NULL},
    {"einsum_ref", ISA_SCALAR, einsum_applies, einsum_prepare, einsum_run, NULL},
    {0}};
const OpDesc op_Einsum = {"", "Einsum", 1, -1, 1, 1, 0, parse_einsum, einsum_infer, einsum_flops, einsum_kernels};

/* ================= Det ================= */

static crun_status det_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, x->rank >= 2 && x->dims[x->rank - 1] == x->dims[x->rank - 2],
               "input must be [*, M, M] (square matrices)");
    out_set(c->out[0], x->dtype, x->rank - 2, x->dims);
    return CRUN_OK;
}

static int64_t det_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    int64_t m = in[0]->dims[in[0]->rank - 1];
    return tensor_numel(out[0]) * m * m * m * 2 / 3;
}

typedef struct DetJob {
    const Tensor *x;
    Tensor *y;
    int64_t m;
    double *ws;
} DetJob;

static void det_task(void *ctx, int64_t t, int thread)
{
    const DetJob *j = ctx;
    int64_t m = j->m;
    double *a = j->ws + thread * m * m, det = 1.0;
    for (int64_t i = 0; i < m * m; i++)
        a[i] = tensor_get_double(j->x, t * m * m + i);
    for (int64_t col = 0; col < m && det != 0.0; col++) {
        int64_t piv = col;
        for (int64_t r = col + 1; r < m; r++)
            if (fabs(a[r * m + col]) > fabs(a[piv * m + col]))
                piv = r;
        if (a[piv * m + col] == 0.0) {
            det = 0.0;
            break;
        }
        if (piv != col) {
            for (int64_t c = 0; c < m; c++) {
                double tmp = a[col * m + c];
                a[col * m + c] = a[piv * m + c];
                a[piv * m + c] = tmp;
            }
            det = -det;
        }
        double d = a[col * m + col];
        det *= d;
        for (int64_t r = col + 1; r < m; r++) {
            double f = a[r * m + col] / d;
            for (int64_t c = col + 1; c < m; c++)
                a[r * m + c] -= f * a[col * m + c];
        }
    }
    tensor_set_double(j->y, t, det);
}

static crun_status det_prepare(PrepCtx *c)
{
    int64_t m = c->in[0]->dims[c->in[0]->rank - 1];
    c->ws_bytes = (size_t)(m * m) * sizeof(double) * (size_t)c->n_threads;
    return CRUN_OK;
}

static crun_status det_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    DetJob j = {x, k->out[0], x->dims[x->rank - 1], k->ws};
    pool_for(k->pool, tensor_numel(k->out[0]), det_task, &j);
    return CRUN_OK;
}

static const KernelVariant det_kernels[] = {{"det_lu_ref", ISA_SCALAR, NULL, det_prepare, det_run, NULL}, {0}};
const OpDesc op_Det = {"", "Det", 1, 1, 1, 1, 0, NULL, det_infer, det_flops, det_kernels};
