/* gemm.c - the Gemm and MatMul ops on top of the packed GEMM (ops/gemm.h).
 *
 * float32 runs the packed GEMM, with a constant B (the usual weight) packed once at plan
 * time. Other types run a plain loop accumulating in double (floats) or in wrapping
 * 64-bit integers. */
#include <stdlib.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/gemm.h"
#include "runtime/threadpool.h"

typedef struct GemmParams {
    float alpha, beta;
    int64_t trans_a, trans_b;
} GemmParams;

/* Prepared state of a float32 GEMM: the packed constant B, if any (shared by the model's
 * plans, or held inline when there is no shared cache). */
typedef struct GemmState {
    const GemmUkernel *uk;
    const float *b_packed;
    float inline_b[];
} GemmState;

/* The half-precision variants' kernel data: their microkernels compute in float16. */
KV_SIMD_ONLY static const bool in_half = true;

/* The microkernel for M rows and the one whose strips the pack uses (best for any M). */
static const GemmUkernel *ukernel_for(const PrepCtx *c, int64_t M)
{
    return c->kdata == &in_half ? gemm_ukernel_f16_for(M) : gemm_ukernel_for(M);
}

static const GemmUkernel *ukernel_layout(const PrepCtx *c)
{
    return c->kdata == &in_half ? gemm_ukernel_f16_for(0) : gemm_ukernel_best();
}

/* Packs the constant B of a Gemm (transB-aware) or a 2-D MatMul for the best microkernel. */
static void fill_packed_b(const void *ctx, void *dst)
{
    const PrepCtx *c = ctx;
    const Tensor *b = c->in[1];
    const GemmParams *p = strcmp(c->node->op_type, "Gemm") == 0 ? c->params : NULL;
    bool trans = p && p->trans_b;
    int64_t K = trans ? b->dims[1] : b->dims[0], N = trans ? b->dims[0] : b->dims[1];
    GemmMatrix m = {b->data, b->dims[1], trans};
    gemm_pack_b_full(ukernel_layout(c), gemm_pack_b_matrix, &m, K, N, dst);
}

/* A GemmState for an M x K x N product with the microkernel suiting M, whose b_packed
 * holds B packed (when B is constant). The packing depends only on the ISA's strip width,
 * which every microkernel of one ISA shares, so plans for any M share one packing. */
static GemmState *state_with_b(PrepCtx *c, bool pack, int64_t M, int64_t K, int64_t N)
{
    const GemmUkernel *uk = ukernel_for(c, M), *layout = ukernel_layout(c);
    assert(uk->nr == layout->nr);
    size_t packed = pack ? gemm_packed_b_bytes(uk, K, N) : 0, inline_bytes = c->packs ? 0 : packed;
    GemmState *s = mem_alloc_aligned(sizeof(GemmState) + inline_bytes);
    if (!s)
        return NULL;
    s->uk = uk;
    s->b_packed = NULL;
    if (pack && c->packs) {
        s->b_packed = prep_shared(c, layout->name, packed, fill_packed_b); /* per ISA: limits vary */
        prep_packed_away(c, c->in[1]);
    } else if (pack) {
        fill_packed_b(c, s->inline_b);
        s->b_packed = s->inline_b;
    }
    if (pack && !s->b_packed) {
        mem_free(s);
        return NULL;
    }
    c->state = s;
    c->state_bytes = sizeof(GemmState) + inline_bytes;
    return s;
}

/* Generic path for non-float32 types: out[M,N] = A . B with element strides. */
static void matmul_generic(const Tensor *a, int64_t a_off, int64_t a_rs, int64_t a_cs, const Tensor *b, int64_t b_off,
                           int64_t b_rs, int64_t b_cs, Tensor *o, int64_t o_off, int64_t M, int64_t N, int64_t K)
{
    bool is_int = dtype_is_int(o->dtype);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double fs = 0;
            uint64_t is = 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t ia = a_off + i * a_rs + k * a_cs, ib = b_off + k * b_rs + j * b_cs;
                if (is_int)
                    is += (uint64_t)tensor_get_int(a, ia) * (uint64_t)tensor_get_int(b, ib);
                else
                    fs += tensor_get_double(a, ia) * tensor_get_double(b, ib);
            }
            if (is_int)
                tensor_set_int(o, o_off + i * N + j, (int64_t)is);
            else
                tensor_set_double(o, o_off + i * N + j, fs);
        }
}

static bool is_f32(const PrepCtx *c, const void *kdata) { return c->in[0]->dtype == CRUN_DTYPE_FLOAT; }

/* Float16-weight models multiply by constant (packed) weights in float16 where the CPU
 * can; B computed at run time stays float32. */
KV_SIMD_ONLY static bool is_f16_weights(const PrepCtx *c, const void *kdata)
{
    return is_f32(c, kdata) && c->fp16_weights && c->in[1]->data && c->in[1]->rank == 2;
}

/* ================= Gemm ================= */

static crun_status parse_gemm(Node *n, Diag *d)
{
    GemmParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_float(n, "alpha", 1.0f, &p->alpha, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "beta", 1.0f, &p->beta, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "transA", 0, &p->trans_a, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "transB", 0, &p->trans_b, d);
    return st;
}

static void gemm_dims(const GemmParams *p, const Tensor *a, const Tensor *b, int64_t *M, int64_t *N, int64_t *K,
                      int64_t *Kb)
{
    *M = p->trans_a ? a->dims[1] : a->dims[0];
    *K = p->trans_a ? a->dims[0] : a->dims[1];
    *Kb = p->trans_b ? b->dims[1] : b->dims[0];
    *N = p->trans_b ? b->dims[0] : b->dims[1];
}

CRUN_FOR_SIZE static crun_status gemm_infer(InferCtx *c)
{
    const GemmParams *p = c->params;
    const Tensor *a = c->in[0], *b = c->in[1];
    NODE_CHECK(c, a->rank == 2 && b->rank == 2, "A and B must be 2-D (got rank %d and %d)", a->rank, b->rank);
    NODE_CHECK(c, a->dtype == b->dtype, "A is %s but B is %s", dtype_name(a->dtype), dtype_name(b->dtype));
    int64_t M, N, K, Kb;
    gemm_dims(p, a, b, &M, &N, &K, &Kb);
    NODE_CHECK(c, K == Kb, "inner dimensions differ (%lld and %lld)", (long long)K, (long long)Kb);
    if (c->n_in > 2 && c->in[2]) {
        const Tensor *cc = c->in[2];
        int64_t mn[2] = {M, N}, bd[CRUN_MAX_RANK];
        int br;
        NODE_CHECK(c, cc->dtype == a->dtype, "C is %s but A is %s", dtype_name(cc->dtype), dtype_name(a->dtype));
        NODE_CHECK(c, cc->rank <= 2 && broadcast_shape(mn, 2, cc->dims, cc->rank, bd, &br) && bd[0] == M && bd[1] == N,
                   "C does not broadcast to [%lld,%lld]", (long long)M, (long long)N);
    }
    int64_t dims[2] = {M, N};
    out_set(c->out[0], a->dtype, 2, dims);
    return CRUN_OK;
}

static int64_t gemm_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    const GemmParams *p = n->params;
    int64_t M, N, K, Kb;
    gemm_dims(p, in[0], in[1], &M, &N, &K, &Kb);
    return 2 * M * N * K;
}

static GemmBias bias_kind_of(const Tensor *cc, int64_t M, int64_t N, int64_t *ld)
{
    *ld = N;
    if (!cc)
        return GEMM_BIAS_NONE;
    if (tensor_numel(cc) == 1)
        return GEMM_BIAS_SCALAR;
    if (cc->rank == 1 || cc->dims[0] == 1)
        return GEMM_BIAS_COL;
    if (cc->dims[1] == 1)
        return GEMM_BIAS_ROW;
    return GEMM_BIAS_FULL;
}

static crun_status gemm_prepare(PrepCtx *c)
{
    const GemmParams *p = c->params;
    int64_t M, N, K, Kb;
    gemm_dims(p, c->in[0], c->in[1], &M, &N, &K, &Kb);
    GemmState *s = state_with_b(c, c->in[1]->data != NULL, M, K, N);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    GemmArgs g = {.M = M, .N = N, .K = K, .uk = s->uk, .b_packed = s->b_packed};
    c->ws_bytes = gemm_ws_bytes(&g, c->n_threads);
    return CRUN_OK;
}

static crun_status gemm_run_f32(KernelCtx *k)
{
    const GemmParams *p = k->params;
    const GemmState *s = k->state;
    const Tensor *a = k->in[0], *b = k->in[1], *cc = k->n_in > 2 ? k->in[2] : NULL;
    int64_t M, N, K, Kb;
    gemm_dims(p, a, b, &M, &N, &K, &Kb);
    GemmMatrix bm = {b->data, b->dims[1], p->trans_b != 0};
    GemmArgs g = {.M = M, .N = N, .K = K, .uk = s->uk, .a = {a->data, a->dims[1], p->trans_a != 0},
                  .b_packed = s->b_packed, .pack_b = gemm_pack_b_matrix, .b_src = &bm, .c = k->out[0]->data,
                  .ldc = N, .alpha = p->alpha, .beta = p->beta, .act = k->node->act};
    g.bias_kind = bias_kind_of(cc, M, N, &g.bias_ld);
    g.bias = cc ? cc->data : NULL;
    if (p->beta == 0.0f)
        g.bias_kind = GEMM_BIAS_NONE;
    gemm_run(&g, k->ws, k->pool);
    return CRUN_OK;
}

CRUN_FOR_SIZE static crun_status gemm_run_generic(KernelCtx *k)
{
    const GemmParams *p = k->params;
    const Tensor *a = k->in[0], *b = k->in[1], *cc = k->n_in > 2 ? k->in[2] : NULL;
    Tensor *o = k->out[0];
    int64_t M, N, K, Kb;
    gemm_dims(p, a, b, &M, &N, &K, &Kb);
    int64_t ars = p->trans_a ? 1 : a->dims[1], acs = p->trans_a ? a->dims[1] : 1;
    int64_t brs = p->trans_b ? 1 : b->dims[1], bcs = p->trans_b ? b->dims[1] : 1;
    matmul_generic(a, 0, ars, acs, b, 0, brs, bcs, o, 0, M, N, K);
    int64_t ld;
    GemmBias bk = bias_kind_of(cc, M, N, &ld);
    bool is_int = dtype_is_int(o->dtype);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            int64_t bi = bk == GEMM_BIAS_SCALAR ? 0 : bk == GEMM_BIAS_ROW ? i : bk == GEMM_BIAS_COL ? j : i * ld + j;
            int64_t oi = i * N + j;
            if (is_int) {
                int64_t v = (int64_t)((uint64_t)tensor_get_int(o, oi) * (uint64_t)(int64_t)p->alpha);
                if (bk != GEMM_BIAS_NONE)
                    v = (int64_t)((uint64_t)v + (uint64_t)tensor_get_int(cc, bi) * (uint64_t)(int64_t)p->beta);
                tensor_set_int(o, oi, v);
            } else {
                double v = p->alpha * tensor_get_double(o, oi);
                if (bk != GEMM_BIAS_NONE)
                    v += p->beta * tensor_get_double(cc, bi);
                /* a fused activation (float32 only) */
                tensor_set_double(o, oi, o->dtype == CRUN_DTYPE_FLOAT ? act_apply1(&k->node->act, (float)v) : v);
            }
        }
    return CRUN_OK;
}

static const KernelVariant gemm_kernels[] = {
#ifdef CRUN_HAVE_NEONFP16
    {"gemm_f16_packed", ISA_NEONFP16, is_f16_weights, gemm_prepare, gemm_run_f32, &in_half},
#endif
    {"gemm_f32_packed", ISA_SCALAR, is_f32, gemm_prepare, gemm_run_f32, NULL},
    {"gemm_generic", ISA_SCALAR, NULL, NULL, gemm_run_generic, NULL},
    {0}};
const OpDesc op_Gemm = {"", "Gemm", 2, 3, 1, 1, OPF_ACT_EPILOGUE, parse_gemm, gemm_infer, gemm_flops, gemm_kernels};

/* ================= MatMul (numpy semantics; input 2 is a bias the fusion pass adds) ================= */


bool matmul_shape(const Tensor *a, const Tensor *b, MatMulShape *s, int64_t *out_dims, int *out_rank)
{
    int ra = a->rank, rb = b->rank;
    if (ra < 1 || rb < 1)
        return false;
    s->M = ra == 1 ? 1 : a->dims[ra - 2];
    s->K = a->dims[ra - 1];
    int64_t kb = rb == 1 ? b->dims[0] : b->dims[rb - 2];
    s->N = rb == 1 ? 1 : b->dims[rb - 1];
    if (kb != s->K)
        return false;
    int ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0;
    if (!broadcast_shape(a->dims, ba, b->dims, bb, s->batch, &s->batch_rank))
        return false;
    int64_t as = s->M * s->K, bs = s->K * s->N;
    s->n_batch = 1;
    for (int i = s->batch_rank - 1; i >= 0; i--) {
        int ia = i - (s->batch_rank - ba), ib = i - (s->batch_rank - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        s->a_bs[i] = da == 1 ? 0 : as;
        s->b_bs[i] = db == 1 ? 0 : bs;
        as *= da;
        bs *= db;
        s->n_batch *= s->batch[i];
    }
    int r = 0;
    for (int i = 0; i < s->batch_rank; i++)
        out_dims[r++] = s->batch[i];
    if (ra > 1)
        out_dims[r++] = s->M;
    if (rb > 1)
        out_dims[r++] = s->N;
    *out_rank = r;
    return true;
}

void matmul_batch_offsets(const MatMulShape *s, int64_t t, int64_t *ao, int64_t *bo)
{
    int64_t rem = t;
    *ao = *bo = 0;
    for (int i = s->batch_rank - 1; i >= 0; i--) {
        int64_t idx = rem % s->batch[i];
        rem /= s->batch[i];
        *ao += idx * s->a_bs[i];
        *bo += idx * s->b_bs[i];
    }
}

static crun_status matmul_infer(InferCtx *c)
{
    const Tensor *a = c->in[0], *b = c->in[1];
    NODE_CHECK(c, a->dtype == b->dtype, "A is %s but B is %s", dtype_name(a->dtype), dtype_name(b->dtype));
    MatMulShape s = {0};
    int64_t dims[CRUN_MAX_RANK + 2];
    int r;
    char sa[96], sb[96];
    NODE_CHECK(c, a->rank + b->rank <= 2 * CRUN_MAX_RANK && matmul_shape(a, b, &s, dims, &r) && r <= CRUN_MAX_RANK,
               "cannot multiply %s by %s", shape_str(a->dims, a->rank, sa, sizeof sa),
               shape_str(b->dims, b->rank, sb, sizeof sb));
    if (c->n_in > 2 && c->in[2])
        NODE_CHECK(c, tensor_numel(c->in[2]) == s.N, "fused bias must have N = %lld values", (long long)s.N);
    out_set(c->out[0], a->dtype, r, dims);
    return CRUN_OK;
}

static int64_t matmul_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    MatMulShape s = {0};
    int64_t dims[CRUN_MAX_RANK + 2];
    int r;
    return matmul_shape(in[0], in[1], &s, dims, &r) ? 2 * s.n_batch * s.M * s.N * s.K : 0;
}

/* B without batch dims lets A's batches fold into M: one GEMM for the whole input. */
static bool b_is_2d(const Tensor *b) { return b->rank <= 2; }

static crun_status matmul_prepare(PrepCtx *c)
{
    MatMulShape s = {0};
    int64_t dims[CRUN_MAX_RANK + 2];
    int r;
    matmul_shape(c->in[0], c->in[1], &s, dims, &r);
    /* A 1-D B is a [K, 1] matrix: fill_packed_b reads dims[1], so pack only 2-D ones. */
    int64_t m_all = b_is_2d(c->in[1]) ? s.M * s.n_batch : s.M;
    GemmState *st = state_with_b(c, c->in[1]->data != NULL && c->in[1]->rank == 2, m_all, s.K, s.N);
    if (!st)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory packing weights");
    GemmArgs g = {.M = m_all, .N = s.N, .K = s.K, .uk = st->uk, .b_packed = st->b_packed};
    c->ws_bytes = gemm_ws_bytes(&g, c->n_threads);
    return CRUN_OK;
}

static crun_status matmul_run_f32(KernelCtx *k)
{
    if (tensor_numel(k->out[0]) == 0) /* nothing to compute, however many empty batches */
        return CRUN_OK;
    const Tensor *a = k->in[0], *b = k->in[1], *bias = k->n_in > 2 ? k->in[2] : NULL;
    const GemmState *st = k->state;
    MatMulShape s = {0};
    int64_t dims[CRUN_MAX_RANK + 2];
    int r;
    matmul_shape(a, b, &s, dims, &r);
    const float *A = a->data, *B = b->data;
    float *C = k->out[0]->data;
    GemmMatrix bm = {B, s.N, false};
    GemmArgs g = {.M = s.M, .N = s.N, .K = s.K, .uk = st->uk, .a = {A, s.K, false},
                  .b_packed = st->b_packed, .pack_b = gemm_pack_b_matrix, .b_src = &bm,
                  .c = C, .ldc = s.N, .alpha = 1.0f, .beta = 1.0f, .act = k->node->act,
                  .bias_kind = bias ? GEMM_BIAS_COL : GEMM_BIAS_NONE, .bias = bias ? bias->data : NULL};
    if (b_is_2d(b)) {
        /* Every batch of A shares B (A's batch dims are never broadcast against nothing). */
        g.M = s.M * s.n_batch;
        gemm_run(&g, k->ws, k->pool);
        return CRUN_OK;
    }
    for (int64_t t = 0; t < s.n_batch; t++) {
        int64_t ao, bo;
        matmul_batch_offsets(&s, t, &ao, &bo);
        GemmMatrix bt = {B + bo, s.N, false};
        g.a.data = A + ao;
        g.b_src = &bt;
        g.c = C + t * s.M * s.N;
        gemm_run(&g, k->ws, k->pool);
    }
    return CRUN_OK;
}

CRUN_FOR_SIZE static crun_status matmul_run_generic(KernelCtx *k)
{
    const Tensor *a = k->in[0], *b = k->in[1];
    if (tensor_numel(k->out[0]) == 0)
        return CRUN_OK;
    MatMulShape s = {0};
    int64_t dims[CRUN_MAX_RANK + 2];
    int r;
    matmul_shape(a, b, &s, dims, &r);
    for (int64_t t = 0; t < s.n_batch; t++) {
        int64_t ao, bo;
        matmul_batch_offsets(&s, t, &ao, &bo);
        matmul_generic(a, ao, s.K, 1, b, bo, s.N, 1, k->out[0], t * s.M * s.N, s.M, s.N, s.K);
    }
    /* What the fusion pass folded in (float32 only): the bias per column, the activation. */
    const Tensor *bias = k->n_in > 2 ? k->in[2] : NULL;
    if (k->out[0]->dtype == CRUN_DTYPE_FLOAT && (bias || k->node->act.kind != ACT_NONE)) {
        float *y = k->out[0]->data;
        for (int64_t i = 0; i < tensor_numel(k->out[0]); i++)
            y[i] = act_apply1(&k->node->act, bias ? y[i] + ((const float *)bias->data)[i % s.N] : y[i]);
    }
    return CRUN_OK;
}

static const KernelVariant matmul_kernels[] = {
#ifdef CRUN_HAVE_NEONFP16
    {"matmul_f16_packed", ISA_NEONFP16, is_f16_weights, matmul_prepare, matmul_run_f32, &in_half},
#endif
    {"matmul_f32_packed", ISA_SCALAR, is_f32, matmul_prepare, matmul_run_f32, NULL},
    {"matmul_generic", ISA_SCALAR, NULL, NULL, matmul_run_generic, NULL},
    {0}};
const OpDesc op_MatMul = {"", "MatMul", 2, 2, 1, 1, OPF_ACT_EPILOGUE, NULL, matmul_infer, matmul_flops,
                          matmul_kernels};
