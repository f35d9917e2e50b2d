/* matmul_nbits.c - com.microsoft MatMulNBits, the weight-only block-quantized MatMul that
 * `crun quantize --int4` writes (and ONNX Runtime's tools emit): Y = A . dequant(B)^T (+ bias).
 *
 * B is [N, k_blocks, blob] uint8: for each output n, K codes of `bits` bits packed low
 * bits first, k_blocks = ceil(K / block_size) blocks of block_size codes (blob = block_size
 * * bits / 8 bytes each). Block b of row n dequantizes as (code - zero_point) * scale with
 * scale = scales[n * k_blocks + b] and zero_point from zero_points: uint8 codes packed the
 * same way, one row of ceil(k_blocks * bits / 8) bytes per n, or floats [N * k_blocks];
 * absent, 2^(bits - 1).
 *
 * The weights are dequantized as the float GEMM packs them: with constant B, scales and
 * zero points (the usual case) once, at plan time, so a run costs a float GEMM; otherwise
 * block by block in each run. */
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"

typedef struct NbitsParams {
    int64_t K, N, bits, block;
} NbitsParams;

static crun_status parse_nbits(Node *n, Diag *d)
{
    NbitsParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    int64_t level;
    crun_status st = attr_get_int(n, "K", -1, &p->K, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "N", -1, &p->N, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "bits", 4, &p->bits, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "block_size", -1, &p->block, d);
    if (st == CRUN_OK) /* (how much precision the runtime may trade: crun computes in float) */
        st = attr_get_int(n, "accuracy_level", 0, &level, d);
    if (st != CRUN_OK)
        return st;
    if (p->K < 1 || p->N < 1 || p->K > CRUN_MAX_NUMEL || p->N > CRUN_MAX_NUMEL / p->K)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "K and N must be given, positive and not huge (got %lld, %lld)",
                         (long long)p->K, (long long)p->N);
    if (p->bits != 2 && p->bits != 4 && p->bits != 8)
        return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "bits %lld (2, 4 and 8 are supported)", (long long)p->bits);
    if (p->block < 16 || p->block > 4096 || (p->block & (p->block - 1)))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "block_size %lld must be a power of 2 from 16",
                         (long long)p->block);
    return CRUN_OK;
}

static int64_t k_blocks(const NbitsParams *p) { return (p->K + p->block - 1) / p->block; }
static int64_t blob_bytes(const NbitsParams *p) { return p->block * p->bits / 8; }
static int64_t zp_row_bytes(const NbitsParams *p) { return (k_blocks(p) * p->bits + 7) / 8; }

static crun_status nbits_infer(InferCtx *c)
{
    const NbitsParams *p = c->params;
    const Tensor *a = c->in[0], *b = c->in[1], *s = c->in[2];
    const Tensor *z = c->n_in > 3 ? c->in[3] : NULL, *bias = c->n_in > 5 ? c->in[5] : NULL;
    int64_t kb = k_blocks(p);
    NODE_CHECK(c, a->dtype == CRUN_DTYPE_FLOAT, "A must be float (got %s)", dtype_name(a->dtype));
    NODE_CHECK(c, a->rank >= 1 && a->dims[a->rank - 1] == p->K, "A's last dimension must be K = %lld",
               (long long)p->K);
    NODE_CHECK(c, b->dtype == CRUN_DTYPE_UINT8 && tensor_numel(b) == p->N * kb * blob_bytes(p),
               "B must be uint8 [N, k_blocks, blob] = [%lld, %lld, %lld]", (long long)p->N, (long long)kb,
               (long long)blob_bytes(p));
    NODE_CHECK(c, s->dtype == CRUN_DTYPE_FLOAT && tensor_numel(s) == p->N * kb,
               "scales must be %lld floats (N x k_blocks)", (long long)(p->N * kb));
    NODE_CHECK(c, !z || (z->dtype == CRUN_DTYPE_UINT8 && tensor_numel(z) == p->N * zp_row_bytes(p)) ||
                      (z->dtype == CRUN_DTYPE_FLOAT && tensor_numel(z) == p->N * kb),
               "zero_points must be packed uint8 [%lld] or float [%lld]", (long long)(p->N * zp_row_bytes(p)),
               (long long)(p->N * kb));
    NODE_CHECK(c, c->n_in <= 4 || !c->in[4], "g_idx (a deprecated input) is not supported");
    NODE_CHECK(c, !bias || (bias->dtype == CRUN_DTYPE_FLOAT && tensor_numel(bias) == p->N),
               "bias must be %lld floats", (long long)p->N);
    int64_t dims[CRUN_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->rank - 1] = p->N;
    out_set(c->out[0], CRUN_DTYPE_FLOAT, a->rank, dims);
    return CRUN_OK;
}

static int64_t nbits_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    const NbitsParams *p = n->params;
    return 2 * tensor_numel(in[0]) / p->K * p->K * p->N;
}

/* Code i of a low-bits-first packing. */
static inline int32_t code_at(const uint8_t *bytes, int64_t i, int64_t bits)
{
    int64_t bit = i * bits;
    return (bytes[bit / 8] >> (bit % 8)) & ((1 << bits) - 1);
}

/* Where the weights come from: the codes, scales and zero points. */
typedef struct NbitsSrc {
    const NbitsParams *p;
    const uint8_t *b;
    const float *scales;
    const Tensor *z;
} NbitsSrc;

/* Weight (n, k): (code - zero point) * scale of its block. */
static inline float weight_at(const NbitsSrc *w, int64_t n, int64_t k)
{
    const NbitsParams *p = w->p;
    int64_t kb = k_blocks(p), blk = k / p->block;
    float zp = (float)(1 << (p->bits - 1));
    if (w->z && w->z->dtype == CRUN_DTYPE_UINT8)
        zp = (float)code_at((const uint8_t *)w->z->data + n * zp_row_bytes(p), blk, p->bits);
    else if (w->z)
        zp = ((const float *)w->z->data)[n * kb + blk];
    const uint8_t *codes = w->b + (n * kb + blk) * blob_bytes(p);
    return ((float)code_at(codes, k % p->block, p->bits) - zp) * w->scales[n * kb + blk];
}

/* A GemmPackBFn that dequantizes as it packs: B is the [K, N] matrix dequant(codes)^T. */
static void pack_b_nbits(const void *src, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst)
{
    const NbitsSrc *w = src;
    for (int64_t s = 0; s < nc; s += nr) {
        float *strip = dst + (s / nr) * kc * nr;
        for (int j = 0; j < nr; j++) {
            bool in = s + j < nc;
            for (int64_t k = 0; k < kc; k++)
                strip[k * nr + j] = in ? weight_at(w, n0 + s + j, k0 + k) : 0.0f;
        }
    }
}

static const Tensor *zero_points(int n_in, const Tensor *const *in) { return n_in > 3 ? in[3] : NULL; }

typedef struct NbitsState {
    const GemmUkernel *uk;
    const float *b_packed; /* NULL: packed block by block as each run needs it */
    float inline_b[];
} NbitsState;

static void fill_packed(const void *ctx, void *dst)
{
    const PrepCtx *c = ctx;
    const NbitsParams *p = c->params;
    NbitsSrc w = {p, c->in[1]->data, c->in[2]->data, zero_points(c->n_in, c->in)};
    gemm_pack_b_full(gemm_ukernel_best(), pack_b_nbits, &w, p->K, p->N, dst);
}

static crun_status nbits_prepare(PrepCtx *c)
{
    const NbitsParams *p = c->params;
    int64_t M = tensor_numel(c->in[0]) / p->K;
    const Tensor *z = zero_points(c->n_in, c->in);
    bool pack = c->in[1]->data && c->in[2]->data && (!z || z->data);
    const GemmUkernel *uk = gemm_ukernel_for(M);
    size_t packed = pack ? gemm_packed_b_bytes(uk, p->K, p->N) : 0, inline_bytes = c->packs ? 0 : packed;
    NbitsState *s = mem_alloc_aligned(sizeof *s + inline_bytes);
    if (!s)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory unpacking weights");
    *s = (NbitsState){.uk = uk};
    c->state = s;
    c->state_bytes = sizeof *s + inline_bytes;
    if (pack && c->packs) {
        s->b_packed = prep_shared(c, "nbits_f32", packed, fill_packed);
        prep_packed_away(c, c->in[1]);
        if (!s->b_packed)
            return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory unpacking weights");
    } else if (pack) {
        fill_packed(c, s->inline_b);
        s->b_packed = s->inline_b;
    }
    GemmArgs g = {.M = M, .N = p->N, .K = p->K, .uk = uk, .b_packed = s->b_packed};
    c->ws_bytes = gemm_ws_bytes(&g, c->n_threads);
    return CRUN_OK;
}

static crun_status nbits_run(KernelCtx *k)
{
    const NbitsParams *p = k->params;
    const NbitsState *s = k->state;
    const Tensor *bias = k->n_in > 5 ? k->in[5] : NULL;
    int64_t M = tensor_numel(k->in[0]) / p->K;
    if (M == 0)
        return CRUN_OK;
    NbitsSrc w = {p, k->in[1]->data, k->in[2]->data, zero_points(k->n_in, k->in)};
    GemmArgs g = {.M = M, .N = p->N, .K = p->K, .uk = s->uk, .a = {k->in[0]->data, p->K, false},
                  .b_packed = s->b_packed, .pack_b = pack_b_nbits, .b_src = &w, .c = k->out[0]->data,
                  .ldc = p->N, .alpha = 1.0f, .beta = 1.0f, .act = k->node->act,
                  .bias_kind = bias ? GEMM_BIAS_COL : GEMM_BIAS_NONE, .bias = bias ? bias->data : NULL};
    gemm_run(&g, k->ws, k->pool);
    return CRUN_OK;
}

static const KernelVariant nbits_kernels[] = {{"matmul_nbits_f32", ISA_SCALAR, NULL, nbits_prepare, nbits_run, NULL},
                                              {0}};
const OpDesc op_MatMulNBits = {"com.microsoft", "MatMulNBits", 3, 6, 1, 1, OPF_ACT_EPILOGUE, parse_nbits,
                               nbits_infer, nbits_flops, nbits_kernels};
