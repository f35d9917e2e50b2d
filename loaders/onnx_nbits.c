/* onnx_nbits.c - see onnx_nbits.h. */
#include "loaders/onnx_nbits.h"

#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_edit.h"
#include "quant/quant.h"

/* A MatMul or Gemm whose weight (input 1) is a float initializer: W as [N, K] and the
 * bias (Gemm's C when it is N values), or false when the node does not qualify. */
typedef struct NbitsOp {
    const Onnx__TensorProto *w, *bias;
    bool w_is_nk; /* stored [N, K] (Gemm transB) rather than [K, N] */
    int64_t K, N;
} NbitsOp;

static bool is_default_domain(const Onnx__NodeProto *n) { return !n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx"); }

static bool eligible(const Onnx__GraphProto *g, const Onnx__NodeProto *n, NbitsOp *op)
{
    bool mm = !strcmp(n->op_type, "MatMul"), gemm = !strcmp(n->op_type, "Gemm");
    if ((!mm && !gemm) || !is_default_domain(n) || n->n_input < 2 || n->n_output != 1)
        return false;
    const Onnx__TensorProto *w = edit_find_init(g, n->input[1]);
    if (!edit_is_float(w) || !edit_has_floats(w) || w->n_dims != 2 || edit_find_init(g, n->input[0]))
        return false;
    memset(op, 0, sizeof *op);
    op->w = w;
    op->w_is_nk = gemm && edit_attr_i(n, "transB", 0);
    op->K = w->dims[op->w_is_nk ? 1 : 0];
    op->N = w->dims[op->w_is_nk ? 0 : 1];
    if (op->K < 1 || op->N < 1)
        return false;
    if (gemm) {
        if (edit_attr_i(n, "transA", 0) || edit_attr_f(n, "alpha", 1) != 1 || edit_attr_f(n, "beta", 1) != 1)
            return false;
        if (n->n_input > 2 && n->input[2][0]) {
            op->bias = edit_find_init(g, n->input[2]);
            if (!edit_is_float(op->bias) || !edit_has_floats(op->bias) || edit_numel(op->bias) != op->N ||
                op->bias->n_dims > 2)
                return false; /* a bias per row or per element stays a Gemm */
        }
    }
    return true;
}

/* The weight's codes [N, k_blocks, blob], float16 scales [N, k_blocks] and packed zero
 * points [N, zrow] as new initializers named after it. */
static bool quantize_weight(Onnx__GraphProto *g, const NbitsOp *op, int bits, int block, const char *base)
{
    float *w = edit_floats(op->w);
    int64_t K = op->K, N = op->N, kb = (K + block - 1) / block, blob = (int64_t)block * bits / 8;
    int64_t zrow = (kb * bits + 7) / 8;
    uint8_t *codes = calloc((size_t)(N * kb * blob) + 1, 1), *zp = calloc((size_t)(N * zrow) + 1, 1);
    uint16_t *scales = calloc((size_t)(N * kb) + 1, sizeof *scales);
    float *blk = malloc((size_t)block * sizeof *blk);
    uint8_t *cb = malloc((size_t)block);
    bool ok = w && codes && zp && scales && blk && cb;
    for (int64_t n = 0; ok && n < N; n++)
        for (int64_t b = 0; b < kb; b++) {
            int m = (int)CRUN_MIN((int64_t)block, K - b * block);
            for (int i = 0; i < m; i++) {
                int64_t k = b * block + i;
                blk[i] = op->w_is_nk ? w[n * K + k] : w[k * N + n];
            }
            uint8_t z;
            quant_block_nbits(blk, m, bits, &scales[n * kb + b], &z, cb);
            for (int i = 0; i < m; i++) /* low bits first */
                codes[(n * kb + b) * blob + (int64_t)i * bits / 8] |= (uint8_t)(cb[i] << (i * bits % 8));
            zp[n * zrow + b * bits / 8] |= (uint8_t)(z << (b * bits % 8));
        }
    int64_t dc[3] = {N, kb, blob}, ds[2] = {N, kb}, dz[2] = {N, zrow};
    Onnx__TensorProto *tc = ok ? edit_new_tensor(base, "_nbits", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 3, dc, codes,
                                                 (size_t)(N * kb * blob))
                               : NULL;
    Onnx__TensorProto *ts = ok ? edit_new_tensor(base, "_nbits_scale16", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 2, ds,
                                                 scales, (size_t)(N * kb) * 2)
                               : NULL;
    Onnx__TensorProto *tz = ok ? edit_new_tensor(base, "_nbits_zero_point", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 2, dz,
                                                 zp, (size_t)(N * zrow))
                               : NULL;
    free(w), free(codes), free(zp), free(scales), free(blk), free(cb);
    ok = tc && ts && tz && edit_push_init(g, tc) && edit_push_init(g, ts) && edit_push_init(g, tz);
    return ok;
}

/* A 1-D copy of a [1, N] bias (MatMulNBits wants N values in a row). */
static const char *flat_bias(Onnx__GraphProto *g, const NbitsOp *op, const char *base, char **owned)
{
    *owned = NULL;
    if (!op->bias)
        return "";
    if (op->bias->n_dims == 1)
        return op->bias->name;
    float *b = edit_floats(op->bias);
    int64_t dn[1] = {op->N};
    Onnx__TensorProto *t = b ? edit_new_tensor(base, "_nbits_bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, dn, b,
                                               (size_t)op->N * 4)
                             : NULL;
    free(b);
    if (!t || !edit_push_init(g, t))
        return NULL;
    *owned = edit_cat(base, "_nbits_bias");
    return *owned;
}

/* Cast(scale16) -> scale and MatMulNBits(A, codes, scale, zero points, "", bias) -> Y. */
static bool push_nodes(EditNodes *l, const Onnx__NodeProto *n, const NbitsOp *op, const char *base, const char *bias,
                       int bits, int block)
{
    char *c = edit_cat(base, "_nbits"), *s16 = edit_cat(base, "_nbits_scale16"), *s = edit_cat(base, "_nbits_scale");
    char *z = edit_cat(base, "_nbits_zero_point"), *cast = edit_cat(base, "_nbits_Cast");
    char *name = edit_cat(n->name && n->name[0] ? n->name : n->output[0], "_MatMulNBits");
    bool ok = c && s16 && s && z && cast && name;
    if (ok) {
        const char *cin[1] = {s16}, *in[6] = {n->input[0], c, s, z, "", bias};
        edit_push_node(l, edit_new_node("Cast", cast, cin, 1, s, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT));
        Onnx__NodeProto *mm = edit_new_node("MatMulNBits", name, in, bias[0] ? 6 : 4, n->output[0], "K", op->K);
        ok = mm && edit_set_domain(mm, "com.microsoft") && edit_add_attr_i(mm, "N", op->N) &&
             edit_add_attr_i(mm, "bits", bits) && edit_add_attr_i(mm, "block_size", block);
        edit_push_node(l, mm);
    }
    free(c), free(s16), free(s), free(z), free(cast), free(name);
    return ok && !l->oom;
}

/* How many nodes read value name. */
static int uses(const Onnx__GraphProto *g, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            n += !strcmp(g->node[i]->input[k], name);
    return n;
}

/* Rewrites one eligible node into l; false when out of memory. */
static bool rewrite(Onnx__GraphProto *g, const Onnx__NodeProto *n, const NbitsOp *op, int bits, int block,
                    EditNodes *l, char ***dead, int *n_dead)
{
    const char *base = op->w->name;
    char *owned;
    const char *bias = flat_bias(g, op, base, &owned);
    bool ok = bias && quantize_weight(g, op, bits, block, base) && push_nodes(l, n, op, base, bias, bits, block);
    free(owned);
    char **grown = realloc(*dead, (size_t)(*n_dead + 1) * sizeof **dead);
    if (!grown)
        return false;
    *dead = grown;
    (*dead)[(*n_dead)++] = strdup(base); /* dropped after the rewrite if nothing else reads it */
    return ok;
}

static bool is_original(const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (g->node[i] == n)
            return true;
    return false;
}

/* Takes the new node list (freeing the nodes it replaces), or drops it (freeing the nodes
 * it added) when the rewrite failed. */
static void commit(Onnx__GraphProto *g, EditNodes *l, bool ok)
{
    for (size_t i = 0; i < (ok ? g->n_node : l->n); i++) {
        Onnx__NodeProto *n = ok ? g->node[i] : l->v[i];
        bool keep = true;
        for (size_t k = 0; ok && k < l->n && keep; k++)
            keep = l->v[k] != n;
        if (ok ? keep : !is_original(g, n))
            onnx__node_proto__free_unpacked(n, NULL);
    }
    if (ok) {
        free(g->node);
        g->node = l->v;
        g->n_node = l->n;
    } else {
        free(l->v);
    }
}

static crun_status rewrite_graph(Onnx__ModelProto *m, int bits, int block, const char *const *exclude, int n_exclude,
                                 int *n_done, Diag *d)
{
    Onnx__GraphProto *g = m->graph;
    EditNodes l = {0};
    char **dead = NULL;
    int n_dead = 0;
    bool ok = true;
    for (size_t i = 0; i < g->n_node && ok; i++) {
        Onnx__NodeProto *n = g->node[i];
        NbitsOp op;
        if (!n->op_type || edit_in_list(n->name, exclude, n_exclude) || !eligible(g, n, &op)) {
            edit_push_node(&l, n);
            continue;
        }
        ok = rewrite(g, n, &op, bits, block, &l, &dead, &n_dead);
        (*n_done)++;
    }
    ok = ok && !l.oom;
    commit(g, &l, ok);
    for (int i = 0; ok && i < n_dead; i++)
        if (dead[i] && !uses(g, dead[i]))
            edit_drop_init(g, dead[i]);
    for (int i = 0; i < n_dead; i++)
        free(dead[i]);
    free(dead);
    if (!ok)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory quantizing the weights");
    return edit_import_domain(m, "com.microsoft", 1) ? CRUN_OK : diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
}

crun_status nbits_write(const void *data, size_t size, int bits, int block, const char *const *exclude,
                        int n_exclude, const char *path, int *n_done, Diag *d)
{
    *n_done = 0;
    if (bits != 2 && bits != 4 && bits != 8)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "weight bits must be 2, 4 or 8 (got %d)", bits);
    if (block < 16 || block > 4096 || (block & (block - 1)))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "the block size must be a power of 2 from 16 (got %d)", block);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m || !m->graph) {
        if (m)
            onnx__model_proto__free_unpacked(m, NULL);
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "not a valid ONNX model");
    }
    edit_hoist_constants(m->graph);
    crun_status st = rewrite_graph(m, bits, block, exclude, n_exclude, n_done, d);
    if (st == CRUN_OK && *n_done == 0)
        st = diag_fail(d, CRUN_ERR_UNSUPPORTED, "no MatMul or Gemm with constant float weights to quantize");
    if (st == CRUN_OK)
        st = edit_write(m, path, d);
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}
