/* qdq.c - runs QDQ models in integers: DequantizeLinear -> op -> [Relu/Clip] ->
 * QuantizeLinear around Conv, MatMul and Gemm becomes one QLinearConv or QLinearMatMul
 * (int32 accumulation, requantization with per-channel scales, the activation as a clamp
 * of the quantized output); around Add it becomes QLinearAdd, around Sigmoid, LeakyRelu
 * and GlobalAveragePool their com.microsoft QLinear forms; MaxPool, Flatten and Reshape
 * between a DequantizeLinear and a QuantizeLinear of the same parameters run on the
 * 8-bit values.
 * Everything else stays float between its DequantizeLinear and QuantizeLinear nodes.
 *
 * Runs before constant folding would turn the weights' DequantizeLinear into float
 * constants. Unused DequantizeLinear nodes are removed by the dead-node pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/passes/passes.h"

/* A DequantizeLinear with constant scale (and zero point) feeding some node. */
typedef struct Dq {
    int q, scale, zp; /* value ids; zp -1 when absent (0 of q's type) */
    int axis;
    crun_dtype type;  /* of q (intermediate values have no type until planning) */
} Dq;

static const Node *producer(const Graph *g, int v)
{
    int p = v >= 0 ? g->values[v].producer : -1;
    return p >= 0 && !g->nodes[p].dead ? &g->nodes[p] : NULL;
}

static bool is_8bit_value(const Graph *g, int v)
{
    crun_dtype t = g->values[v].dtype;
    return t == CRUN_DTYPE_UINT8 || t == CRUN_DTYPE_INT8;
}

static int64_t const_numel(const Graph *g, int v)
{
    const Value *val = &g->values[v];
    int64_t n = 1;
    for (int i = 0; i < val->rank; i++)
        n *= val->dims[i];
    return n;
}

static bool as_dq(const Graph *g, int v, Dq *out)
{
    const Node *n = producer(g, v);
    if (!node_is(n, "DequantizeLinear") || n->n_in < 2)
        return false;
    int zp = n->n_in > 2 ? n->in[2] : -1;
    /* q's type: known for constants and inputs, else its zero point's (a QuantizeLinear
     * without one makes uint8) */
    crun_dtype t = g->values[n->in[0]].dtype;
    if (t == CRUN_DTYPE_UNDEFINED)
        t = zp >= 0 ? g->values[zp].dtype : CRUN_DTYPE_UINT8;
    if (t != CRUN_DTYPE_UINT8 && t != CRUN_DTYPE_INT8)
        return false;
    if (!value_is_const(g, n->in[1]) || g->values[n->in[1]].dtype != CRUN_DTYPE_FLOAT ||
        (zp >= 0 && !value_is_const(g, zp)))
        return false;
    const Attr *a = node_attr(n, "axis");
    *out = (Dq){n->in[0], n->in[1], zp, a ? (int)a->i : 1, t};
    return true;
}

static bool dq_per_tensor(const Graph *g, const Dq *d)
{
    return const_numel(g, d->scale) == 1 && (d->zp < 0 || const_numel(g, d->zp) == 1);
}

/* A QuantizeLinear with one constant scale and zero point. */
typedef struct Qn {
    Node *node;
    int scale, zp;
} Qn;

static bool as_q(Graph *g, Node *n, Qn *out)
{
    if (!node_is(n, "QuantizeLinear") || n->n_in < 3 || !value_is_const(g, n->in[1]) ||
        !value_is_const(g, n->in[2]) || const_numel(g, n->in[1]) != 1 || const_numel(g, n->in[2]) != 1 ||
        g->values[n->in[1]].dtype != CRUN_DTYPE_FLOAT || !is_8bit_value(g, n->in[2]))
        return false;
    *out = (Qn){n, n->in[1], n->in[2]};
    return true;
}

/* The zero point of d as a value: its own, or a new 0 of q's type. */
static int dq_zero_point(Graph *g, const Dq *d)
{
    if (d->zp >= 0)
        return d->zp;
    Tensor t = {.dtype = d->type, .rank = 0, .data = mem_alloc_aligned(1)};
    if (!t.data)
        return -1;
    *(uint8_t *)t.data = 0;
    return graph_add_const(g, "zero_point", &t);
}

static bool set_inputs(Node *n, const int *in, int count)
{
    int *p = malloc((size_t)count * sizeof *p);
    if (!p)
        return false;
    memcpy(p, in, (size_t)count * sizeof *p);
    free(n->in);
    n->in = p;
    n->n_in = count;
    return true;
}

static bool become(Node *n, const char *domain, const char *op_type)
{
    char *t = strdup(op_type), *dm = strdup(domain);
    const OpDesc *op = op_lookup(domain, op_type);
    if (!t || !dm || !op) {
        free(t);
        free(dm);
        return false;
    }
    free(n->op_type);
    free(n->domain);
    n->op_type = t;
    n->domain = dm;
    n->op = op;
    return true;
}

/* The node between op's output and the QuantizeLinear, when it is a Relu or a Clip with
 * constant bounds: its activation (ACT_NONE when q reads op's output directly). */
static bool act_between(Graph *g, const Uses *u, const Node *op, int q_in, Activation *act, Node **act_node)
{
    *act = (Activation){ACT_NONE, 0, 0, false, 0, 0};
    *act_node = NULL;
    if (op->out[0] == q_in)
        return true;
    Node *a = (Node *)producer(g, q_in);
    if (!a || a->in[0] != op->out[0] || single_consumer(g, u, op->out[0]) != (int)(a - g->nodes))
        return false;
    if (node_is(a, "Relu")) {
        act->kind = ACT_RELU;
    } else if (node_is(a, "Clip")) {
        float lo = -INFINITY, hi = INFINITY;
        if ((a->n_in > 1 && a->in[1] >= 0 && !scalar_const(g, a->in[1], &lo)) ||
            (a->n_in > 2 && a->in[2] >= 0 && !scalar_const(g, a->in[2], &hi)) || a->n_in < 2)
            return false; /* (opset < 11 Clip keeps its bounds in attributes: not matched) */
        *act = (Activation){ACT_CLIP, lo, hi, false, 0, 0};
    } else {
        return false;
    }
    *act_node = a;
    return true;
}

/* Replaces the chain op -> [act] -> q by op (now integer) writing q's output. */
static void take_output(Graph *g, Node *op, Node *act_node, Node *q, const Activation *act)
{
    graph_replace_uses(g, q->out[0], op->out[0]);
    Value *y = &g->values[op->out[0]];
    y->dtype = g->values[q->in[2]].dtype;
    q->dead = true;
    if (act_node) {
        act_node->dead = true;
        op->act = *act;
        note_fused(op, act->kind == ACT_RELU ? "Relu" : "Clip");
    }
}

/* ---- Conv ---- */

/* A bias for QLinearConv: the int32 values under a DequantizeLinear, or a float constant
 * quantized with scale sx * sw[m] (as the spec's bias is). -1 when it is neither. */
static int conv_bias_int32(Graph *g, int b, int64_t M, const Dq *x, const Dq *w)
{
    const Node *p = producer(g, b);
    if (node_is(p, "DequantizeLinear") && g->values[p->in[0]].dtype == CRUN_DTYPE_INT32 &&
        value_is_const(g, p->in[0]) && const_numel(g, p->in[0]) == M)
        return p->in[0];
    if (!value_is_const(g, b) || g->values[b].dtype != CRUN_DTYPE_FLOAT || const_numel(g, b) != M)
        return -1;
    const float *bf = g->values[b].data, *sx = g->values[x->scale].data, *sw = g->values[w->scale].data;
    int64_t nsw = const_numel(g, w->scale);
    Tensor t = {.dtype = CRUN_DTYPE_INT32, .rank = 1, .dims = {M}, .data = mem_alloc_aligned((size_t)M * 4)};
    if (!t.data)
        return -1;
    for (int64_t m = 0; m < M; m++) {
        double s = (double)sx[0] * sw[nsw == 1 ? 0 : m], v = s != 0 ? nearbyint(bf[m] / s) : 0;
        ((int32_t *)t.data)[m] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
    }
    return graph_add_const(g, "bias_int32", &t);
}

static bool fuse_conv(Graph *g, Node *conv, const Qn *q, const Activation *act, Node *act_node)
{
    Dq x, w;
    if (conv->n_in < 2 || !as_dq(g, conv->in[0], &x) || !as_dq(g, conv->in[1], &w) || !dq_per_tensor(g, &x) ||
        !value_is_const(g, w.q))
        return false;
    const Value *wv = &g->values[w.q];
    int64_t M = wv->rank > 0 ? wv->dims[0] : 0, nsw = const_numel(g, w.scale);
    if (M <= 0 || (nsw != 1 && (nsw != M || w.axis != 0)))
        return false;
    int bias = -1;
    if (conv->n_in > 2 && conv->in[2] >= 0 && (bias = conv_bias_int32(g, conv->in[2], M, &x, &w)) < 0)
        return false;
    int zx = dq_zero_point(g, &x), zw = dq_zero_point(g, &w);
    if (zx < 0 || zw < 0)
        return false;
    int in[9] = {x.q, x.scale, zx, w.q, w.scale, zw, q->scale, q->zp, bias};
    if (!set_inputs(conv, in, bias >= 0 ? 9 : 8) || !become(conv, "", "QLinearConv"))
        return false;
    take_output(g, conv, act_node, q->node, act);
    return true;
}

/* ---- MatMul and Gemm ---- */

/* B^T of a constant [N, K] 8-bit matrix, as a new constant [K, N]. */
static int transpose_const(Graph *g, int v)
{
    const Value *b = &g->values[v];
    int64_t N = b->dims[0], K = b->dims[1];
    Tensor t = {.dtype = b->dtype, .rank = 2, .dims = {K, N}, .data = mem_alloc_aligned((size_t)(K * N))};
    if (!t.data)
        return -1;
    const uint8_t *src = b->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            ((uint8_t *)t.data)[k * N + n] = src[n * K + k];
    return graph_add_const(g, "weights_t", &t);
}

/* Gemm's attributes (alpha, beta, transA, transB) when they allow QLinearMatMul. */
static bool gemm_plain(const Node *n, bool *trans_b)
{
    const Attr *ta = node_attr(n, "transA"), *tb = node_attr(n, "transB");
    const Attr *al = node_attr(n, "alpha"), *be = node_attr(n, "beta");
    *trans_b = tb && tb->i;
    return !(ta && ta->i) && (!al || al->f == 1.0f) && (!be || be->f == 1.0f);
}

static bool fuse_matmul(Graph *g, Node *mm, const Qn *q, const Activation *act, Node *act_node, bool gemm)
{
    Dq a, b;
    bool trans_b = false;
    if (mm->n_in < 2 || (gemm && !gemm_plain(mm, &trans_b)) || !as_dq(g, mm->in[0], &a) ||
        !as_dq(g, mm->in[1], &b) || !dq_per_tensor(g, &a) || !value_is_const(g, b.q) || g->values[b.q].rank != 2)
        return false;
    const Value *bv = &g->values[b.q];
    int64_t N = bv->dims[trans_b ? 0 : 1], nsb = const_numel(g, b.scale);
    /* per output column: axis 1 of [K, N], axis 0 of a transposed [N, K] */
    if (nsb != 1 && (nsb != N || b.axis != (trans_b ? 0 : 1)))
        return false;
    int bias = -1;
    if (gemm && mm->n_in > 2 && mm->in[2] >= 0 && (bias = conv_bias_int32(g, mm->in[2], N, &a, &b)) < 0)
        return false;
    int bq = trans_b ? transpose_const(g, b.q) : b.q;
    int za = dq_zero_point(g, &a), zb = dq_zero_point(g, &b);
    if (bq < 0 || za < 0 || zb < 0)
        return false;
    int in[9] = {a.q, a.scale, za, bq, b.scale, zb, q->scale, q->zp, bias};
    if (!set_inputs(mm, in, bias >= 0 ? 9 : 8) || !become(mm, "", "QLinearMatMul"))
        return false;
    free(mm->params); /* Gemm's attributes; QLinearMatMul has none */
    mm->params = NULL;
    take_output(g, mm, act_node, q->node, act);
    return true;
}

/* ---- Add ---- */

static bool fuse_add(Graph *g, Node *add, const Qn *q, const Activation *act, Node *act_node)
{
    Dq a, b;
    if (add->n_in != 2 || !as_dq(g, add->in[0], &a) || !as_dq(g, add->in[1], &b) || !dq_per_tensor(g, &a) ||
        !dq_per_tensor(g, &b))
        return false;
    int za = dq_zero_point(g, &a), zb = dq_zero_point(g, &b);
    if (za < 0 || zb < 0 || a.type != g->values[q->zp].dtype || b.type != g->values[q->zp].dtype)
        return false;
    int in[8] = {a.q, a.scale, za, b.q, b.scale, zb, q->scale, q->zp};
    if (!set_inputs(add, in, 8) || !become(add, "com.microsoft", "QLinearAdd"))
        return false;
    take_output(g, add, act_node, q->node, act);
    return true;
}

/* ---- MaxPool, Flatten, Reshape: the 8-bit values pass through ---- */

static bool same_const(const Graph *g, int a, int b)
{
    if (a == b)
        return true;
    const Value *x = &g->values[a], *y = &g->values[b];
    return x->dtype == y->dtype && const_numel(g, a) == 1 && const_numel(g, b) == 1 &&
           memcmp(x->data, y->data, x->dtype == CRUN_DTYPE_FLOAT ? 4 : 1) == 0;
}

/* MaxPool (order-preserving), Flatten and Reshape (moving values) between a
 * DequantizeLinear and a QuantizeLinear of the same parameters run on the 8-bit values. */
static bool fuse_passthrough(Graph *g, Node *pool, const Qn *q, Node *act_node)
{
    Dq x;
    if (act_node || pool->n_out != 1 || !as_dq(g, pool->in[0], &x) || !dq_per_tensor(g, &x) || x.zp < 0 ||
        !same_const(g, x.scale, q->scale) || !same_const(g, x.zp, q->zp))
        return false;
    float s;
    /* (a negative scale would reverse MaxPool's order) */
    if (node_is(pool, "MaxPool") && (!scalar_const(g, x.scale, &s) || !(s > 0)))
        return false;
    if (!node_set_input(pool, 0, x.q))
        return false;
    take_output(g, pool, NULL, q->node, NULL);
    return true;
}

/* ---- Sigmoid, LeakyRelu, GlobalAveragePool: their com.microsoft QLinear forms ---- */

/* n's op becomes domain/op_type, its attributes parsed again for the new op. */
static bool become_parsed(Node *n, const char *domain, const char *op_type)
{
    const OpDesc *op = op_lookup(domain, op_type);
    void *old = n->params;
    Diag d = {0};
    n->params = NULL;
    if (!op || (op->parse && op->parse(n, &d) != CRUN_OK) || !become(n, domain, op_type)) {
        free(n->params);
        n->params = old;
        return false;
    }
    free(old);
    return true;
}

static bool fuse_unary(Graph *g, Node *op, const Qn *q, Node *act_node, const char *qop)
{
    Dq x;
    if (act_node || op->n_out != 1 || op->n_in < 1 || !as_dq(g, op->in[0], &x) || !dq_per_tensor(g, &x) ||
        x.type != g->values[q->zp].dtype)
        return false;
    int zx = dq_zero_point(g, &x);
    int in[5] = {x.q, x.scale, zx, q->scale, q->zp};
    if (zx < 0 || !set_inputs(op, in, 5) || !become_parsed(op, "com.microsoft", qop))
        return false;
    take_output(g, op, NULL, q->node, NULL);
    return true;
}

static bool fuse_one(Graph *g, const Uses *u, Node *qnode)
{
    Qn q;
    if (!as_q(g, qnode, &q))
        return false;
    Node *op = (Node *)producer(g, qnode->in[0]);
    Activation act;
    Node *act_node;
    if (!op || op->n_out != 1)
        return false;
    if (node_is(op, "Relu") || node_is(op, "Clip")) { /* an activation first: the op is the one before */
        Node *inner = (Node *)producer(g, op->in[0]);
        if (!inner || inner->n_out != 1)
            return false;
        op = inner;
    }
    if (single_consumer(g, u, op->out[0]) < 0 || !act_between(g, u, op, qnode->in[0], &act, &act_node))
        return false;
    if (act_node && single_consumer(g, u, act_node->out[0]) != (int)(qnode - g->nodes))
        return false;
    if (node_is(op, "Conv"))
        return fuse_conv(g, op, &q, &act, act_node);
    if (node_is(op, "MatMul"))
        return fuse_matmul(g, op, &q, &act, act_node, false);
    if (node_is(op, "Gemm"))
        return fuse_matmul(g, op, &q, &act, act_node, true);
    if (node_is(op, "Add"))
        return fuse_add(g, op, &q, &act, act_node);
    if (node_is(op, "MaxPool") || node_is(op, "Flatten") || node_is(op, "Reshape"))
        return fuse_passthrough(g, op, &q, act_node);
    if (node_is(op, "Sigmoid"))
        return fuse_unary(g, op, &q, act_node, "QLinearSigmoid");
    if (node_is(op, "LeakyRelu"))
        return fuse_unary(g, op, &q, act_node, "QLinearLeakyRelu");
    if (node_is(op, "GlobalAveragePool"))
        return fuse_unary(g, op, &q, act_node, "QLinearGlobalAveragePool");
    return false;
}

crun_status pass_fuse_qdq(Graph *g, Diag *d)
{
    Uses u;
    if (uses_build(g, &u) != CRUN_OK)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!fuse_one(g, &u, &g->nodes[i]))
            continue;
        changed = true;
        uses_free(&u); /* the rewrite moved uses: count them again */
        if (uses_build(g, &u) != CRUN_OK)
            return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    uses_free(&u);
    if (changed)
        graph_compact(g);
    return CRUN_OK;
}
