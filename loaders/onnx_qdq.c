/* onnx_qdq.c - see onnx_qdq.h. */
#include "loaders/onnx_qdq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_edit.h"
#include "quant/quant.h"

static Onnx__GraphProto *graph_of(const QdqPlan *p) { return ((Onnx__ModelProto *)p->proto)->graph; }

/* ---- finding the targets ---- */

int qdq_target_index(const QdqPlan *p, const char *name)
{
    for (int i = 0; i < p->n_targets; i++)
        if (!strcmp(p->targets[i].name, name))
            return i;
    return -1;
}

static int add_target(QdqPlan *p, const char *name, int tie)
{
    int i = qdq_target_index(p, name);
    if (i >= 0)
        return i;
    QdqTarget *t = realloc(p->targets, (size_t)(p->n_targets + 1) * sizeof *t);
    if (!t)
        return -1;
    p->targets = t;
    t[p->n_targets] = (QdqTarget){strdup(name), tie};
    return t[p->n_targets].name ? p->n_targets++ : -1;
}

/* The consumers of value name. */
static int consumers(const Onnx__GraphProto *g, const char *name, const Onnx__NodeProto **only)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (!strcmp(g->node[i]->input[k], name)) {
                *only = g->node[i];
                n++;
                break;
            }
    return n;
}

/* The tensor to quantize after an op: its output, or the output of the Relu/Clip that is
 * its only consumer (the runtime fuses that activation into the integer op). */
static const char *output_target(const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    const Onnx__NodeProto *c = NULL;
    if (consumers(g, n->output[0], &c) == 1 && c->n_output == 1 && c->op_type &&
        (!strcmp(c->op_type, "Relu") || !strcmp(c->op_type, "Clip")) && (!c->domain || !c->domain[0]))
        return c->output[0];
    return n->output[0];
}

static bool add_op(QdqPlan *p, const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    bool conv = !strcmp(n->op_type, "Conv"), gemm = !strcmp(n->op_type, "Gemm");
    if (n->n_input < 2 || n->n_output < 1)
        return true;
    const Onnx__TensorProto *w = edit_find_init(g, n->input[1]);
    if (!edit_is_float(w) || !edit_has_floats(w) || (conv && w->n_dims < 3) || (!conv && w->n_dims != 2))
        return true; /* weights computed at run time: stays float */
    if (gemm && (edit_attr_i(n, "transA", 0) || edit_attr_f(n, "alpha", 1) != 1 || edit_attr_f(n, "beta", 1) != 1))
        return true;
    const char *b = n->n_input > 2 && n->input[2][0] ? n->input[2] : NULL;
    if (b && (!edit_is_float(edit_find_init(g, b)) || !edit_has_floats(edit_find_init(g, b))))
        b = NULL; /* (a non-constant bias stays a float input) */
    int x = add_target(p, n->input[0], -1);
    if (x < 0 || add_target(p, output_target(g, n), -1) < 0)
        return false;
    QdqOp *ops = realloc(p->ops, (size_t)(p->n_ops + 1) * sizeof *ops);
    if (!ops)
        return false;
    p->ops = ops;
    int axis = conv ? 0 : gemm && edit_attr_i(n, "transB", 0) ? 0 : 1;
    ops[p->n_ops++] = (QdqOp){strdup(n->input[1]), b ? strdup(b) : NULL, x, axis};
    return true;
}

/* An initializer or the output of a Constant node: values known before running, which a
 * calibration range would only blur. */
static bool is_constant(const Onnx__GraphProto *g, const char *name)
{
    if (edit_find_init(g, name))
        return true;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (n->op_type && !strcmp(n->op_type, "Constant") && n->n_output == 1 && !strcmp(n->output[0], name))
            return true;
    }
    return false;
}

static bool plan_node(QdqPlan *p, const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    if (!n->op_type)
        return true;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return true;
    const char *op = n->op_type;
    if (!strcmp(op, "Conv") || !strcmp(op, "MatMul") || !strcmp(op, "Gemm"))
        return add_op(p, g, n);
    if (!strcmp(op, "Add") && n->n_input == 2 && !is_constant(g, n->input[0]) && !is_constant(g, n->input[1]))
        return add_target(p, n->input[0], -1) >= 0 && add_target(p, n->input[1], -1) >= 0 &&
               add_target(p, output_target(g, n), -1) >= 0;
    /* A global average of a quantized tensor gets its own range (QLinearGlobalAveragePool). */
    if (!strcmp(op, "GlobalAveragePool") && n->n_output == 1 && qdq_target_index(p, n->input[0]) >= 0)
        return add_target(p, n->output[0], -1) >= 0;
    /* Ops that only move or pick values keep their input's quantization, so the runtime
     * runs them on the 8-bit values with no requantization. */
    if ((!strcmp(op, "MaxPool") || !strcmp(op, "Flatten") || !strcmp(op, "Reshape")) && n->n_output == 1) {
        int x = qdq_target_index(p, n->input[0]);
        if (x >= 0 && p->targets[x].tie >= 0)
            x = p->targets[x].tie; /* tie to the root, so a chain shares one range */
        return x < 0 || add_target(p, n->output[0], x) >= 0;
    }
    return true;
}

/* Records n among the nodes computing in int8 (it added an op or a target; a tie of
 * MaxPool/Flatten/Reshape only follows its input, so it is not counted). */
static bool note_node(QdqPlan *p, const Onnx__NodeProto *n)
{
    static const char *const int8_ops[] = {"Conv", "MatMul", "Gemm", "Add", "GlobalAveragePool"};
    if (!n->name || !n->name[0] || !edit_in_list(n->op_type, int8_ops, 5))
        return true;
    char **nodes = realloc(p->nodes, (size_t)(p->n_nodes + 1) * sizeof *nodes);
    if (!nodes)
        return false;
    p->nodes = nodes;
    return (p->nodes[p->n_nodes] = strdup(n->name)) ? (p->n_nodes++, true) : false;
}

crun_status qdq_plan_make(const void *data, size_t size, const char *const *exclude, int n_exclude, QdqPlan *p,
                          Diag *d)
{
    memset(p, 0, sizeof *p);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, data);
    if (!mp || !mp->graph) {
        if (mp)
            onnx__model_proto__free_unpacked(mp, NULL);
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "not a valid ONNX model");
    }
    p->proto = mp;
    for (size_t i = 0; i < mp->n_opset_import; i++)
        if (!mp->opset_import[i]->domain || !mp->opset_import[i]->domain[0])
            p->opset = (int)mp->opset_import[i]->version;
    if (p->opset < 10) {
        qdq_plan_free(p);
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "quantizing needs opset 10 or later (the model imports %d)",
                         p->opset);
    }
    edit_hoist_constants(mp->graph);
    edit_fold_batchnorm(mp->graph);
    const Onnx__GraphProto *g = mp->graph;
    for (size_t i = 0; i < g->n_node; i++) {
        if (edit_in_list(g->node[i]->name, exclude, n_exclude))
            continue;
        int before = p->n_ops + p->n_targets;
        if (!plan_node(p, g, g->node[i]) || (p->n_ops + p->n_targets > before && !note_node(p, g->node[i]))) {
            qdq_plan_free(p);
            return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return CRUN_OK;
}

void qdq_plan_free(QdqPlan *p)
{
    for (int i = 0; i < p->n_targets; i++)
        free(p->targets[i].name);
    for (int i = 0; i < p->n_ops; i++) {
        free(p->ops[i].w);
        free(p->ops[i].b);
    }
    for (int i = 0; i < p->n_nodes; i++)
        free(p->nodes[i]);
    free(p->nodes);
    free(p->targets);
    free(p->ops);
    if (p->proto)
        onnx__model_proto__free_unpacked(p->proto, NULL);
    memset(p, 0, sizeof *p);
}

/* ---- building messages ---- */

/* ---- the calibration model ---- */

crun_status qdq_calibration_model(const QdqPlan *p, uint8_t **bytes, size_t *size, Diag *d)
{
    Onnx__GraphProto *g = graph_of(p);
    size_t n_orig = g->n_output;
    Onnx__ValueInfoProto **orig = g->output;
    Onnx__ValueInfoProto **outs = calloc(n_orig + (size_t)p->n_targets + 1, sizeof *outs);
    Onnx__ValueInfoProto *extra = calloc((size_t)p->n_targets + 1, sizeof *extra);
    if (!outs || !extra) {
        free(outs), free(extra);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (n_orig)
        memcpy(outs, orig, n_orig * sizeof *outs);
    size_t n = n_orig;
    for (int i = 0; i < p->n_targets; i++) {
        if (edit_is_output(g, p->targets[i].name) || edit_find_init(g, p->targets[i].name))
            continue;
        onnx__value_info_proto__init(&extra[i]);
        extra[i].name = p->targets[i].name;
        outs[n++] = &extra[i];
    }
    /* Borrow the outputs for packing, then put the model back as it was. */
    g->output = outs;
    g->n_output = n;
    *size = onnx__model_proto__get_packed_size(p->proto);
    *bytes = malloc(*size + 1);
    if (*bytes)
        onnx__model_proto__pack(p->proto, *bytes);
    g->output = orig;
    g->n_output = n_orig;
    free(outs);
    free(extra);
    return *bytes ? CRUN_OK : diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
}

/* ---- writing the QDQ model ---- */

/* Symmetric int8 weights, per output channel along axis (or one scale). */
static bool quantize_weights(Onnx__GraphProto *g, Onnx__TensorProto *w, int axis, bool per_channel, float **scales,
                             int64_t *n_scales)
{
    float *f = edit_floats(w);
    int64_t n = edit_numel(w), C = per_channel ? w->dims[axis] : 1;
    int64_t inner = 1;
    for (size_t i = (size_t)axis + 1; i < w->n_dims; i++)
        inner *= w->dims[i];
    float *s = calloc((size_t)C, sizeof *s);
    int8_t *q = malloc((size_t)n + 1), *z = calloc((size_t)C + 1, 1);
    if (!f || !s || !q || !z) {
        free(f), free(s), free(q), free(z);
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t c = per_channel ? i / inner % C : 0;
        s[c] = fmaxf(s[c], fabsf(f[i]));
    }
    for (int64_t c = 0; c < C; c++)
        s[c] = quant_weight_scale(s[c]);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = per_channel ? i / inner % C : 0;
        q[i] = (int8_t)quant_quantize(f[i], s[c], 0, QUANT_I8_SYM);
    }
    int64_t dc[1] = {C};
    Onnx__TensorProto *tq = edit_new_tensor(w->name, "_quantized", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, (int)w->n_dims,
                                       w->dims, q, (size_t)n);
    Onnx__TensorProto *ts = edit_new_tensor(w->name, "_scale", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, per_channel ? 1 : 0,
                                       dc, s, (size_t)C * 4);
    Onnx__TensorProto *tz = edit_new_tensor(w->name, "_zero_point", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, per_channel ? 1 : 0,
                                       dc, z, (size_t)C);
    free(f), free(q), free(z);
    *scales = s;
    *n_scales = C;
    return tq && ts && tz && edit_push_init(g, tq) && edit_push_init(g, ts) && edit_push_init(g, tz);
}

/* int32 bias with scale sx * sw[m], zero point 0. */
static bool quantize_bias(Onnx__GraphProto *g, Onnx__TensorProto *b, float sx, const float *sw, int64_t n_sw)
{
    float *f = edit_floats(b);
    int64_t n = edit_numel(b);
    int32_t *q = malloc((size_t)n * 4 + 4), *z = calloc((size_t)n + 1, 4);
    float *s = malloc((size_t)n * 4 + 4);
    if (!f || !q || !z || !s || (n_sw != 1 && n_sw != n)) {
        free(f), free(q), free(z), free(s);
        return false;
    }
    for (int64_t m = 0; m < n; m++) {
        s[m] = sx * sw[n_sw == 1 ? 0 : m];
        q[m] = quant_bias_int32(f[m], s[m]);
    }
    int64_t dn[1] = {n};
    /* One scale for per-tensor weights: a per-axis DequantizeLinear needs opset 13. */
    int sr = n_sw == 1 ? 0 : 1;
    size_t sn = n_sw == 1 ? 4 : (size_t)n * 4;
    Onnx__TensorProto *tq = edit_new_tensor(b->name, "_quantized", ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, dn, q,
                                       (size_t)n * 4);
    Onnx__TensorProto *ts = edit_new_tensor(b->name, "_scale", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, sr, dn, s, sn);
    Onnx__TensorProto *tz = edit_new_tensor(b->name, "_zero_point", ONNX__TENSOR_PROTO__DATA_TYPE__INT32, sr, dn, z,
                                       sn);
    free(f), free(q), free(z), free(s);
    return tq && ts && tz && edit_push_init(g, tq) && edit_push_init(g, ts) && edit_push_init(g, tz);
}

/* DequantizeLinear(name_quantized, name_scale, name_zero_point) -> name. */
static void push_dq_init(EditNodes *l, const char *name, int axis)
{
    char *q = edit_cat(name, "_quantized"), *s = edit_cat(name, "_scale"), *z = edit_cat(name, "_zero_point"), *nn = edit_cat(name, "_DequantizeLinear");
    if (q && s && z && nn) {
        const char *in[3] = {q, s, z};
        edit_push_node(l, edit_new_node("DequantizeLinear", nn, in, 3, name, axis >= 0 ? "axis" : NULL, axis));
    } else {
        l->oom = true;
    }
    free(q), free(s), free(z), free(nn);
}

static bool write_weights(QdqPlan *p, const float (*range)[2], bool per_channel, EditNodes *l)
{
    Onnx__GraphProto *g = graph_of(p);
    for (int i = 0; i < p->n_ops; i++) {
        const QdqOp *op = &p->ops[i];
        Onnx__TensorProto *w = edit_find_init(g, op->w);
        if (!w || !edit_is_float(w))
            continue; /* quantized already (shared by an earlier op) */
        float *sw = NULL;
        int64_t n_sw = 0;
        if (!quantize_weights(g, w, op->w_axis, per_channel, &sw, &n_sw))
            return false;
        push_dq_init(l, op->w, per_channel ? op->w_axis : -1);
        Onnx__TensorProto *b = op->b ? edit_find_init(g, op->b) : NULL;
        if (b && edit_is_float(b)) {
            float sx;
            int32_t zx;
            int r = p->targets[op->x_target].tie >= 0 ? p->targets[op->x_target].tie : op->x_target;
            quant_act_params(range[r][0], range[r][1], &sx, &zx);
            if (!quantize_bias(g, b, sx, sw, n_sw)) {
                free(sw);
                return false;
            }
            push_dq_init(l, op->b, per_channel ? 0 : -1); /* no axis attribute before opset 13 */
            edit_drop_init(g, op->b);
        }
        free(sw);
        edit_drop_init(g, op->w);
    }
    return true;
}

/* Q and DQ of target t right after its producer; consumers read name_dequantized. */
static void push_qdq(EditNodes *l, const QdqPlan *p, int t, const float (*range)[2])
{
    Onnx__GraphProto *g = graph_of(p);
    const char *name = p->targets[t].name;
    int r = p->targets[t].tie >= 0 ? p->targets[t].tie : t;
    float s;
    int32_t z;
    quant_act_params(range[r][0], range[r][1], &s, &z);
    uint8_t zb = (uint8_t)z;
    char *sn = edit_cat(name, "_scale"), *zn = edit_cat(name, "_zero_point"), *qn = edit_cat(name, "_quantized");
    char *dn = edit_cat(name, "_dequantized"), *qnode = edit_cat(name, "_QuantizeLinear"), *dnode = edit_cat(name, "_DequantizeLinear");
    if (sn && zn && qn && dn && qnode && dnode) {
        Onnx__TensorProto *ts = edit_new_tensor(sn, "", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL, &s, 4);
        Onnx__TensorProto *tz = edit_new_tensor(zn, "", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 0, NULL, &zb, 1);
        if (!ts || !tz || !edit_push_init(g, ts) || !edit_push_init(g, tz))
            l->oom = true;
        const char *qin[3] = {name, sn, zn}, *din[3] = {qn, sn, zn};
        edit_push_node(l, edit_new_node("QuantizeLinear", qnode, qin, 3, qn, NULL, 0));
        edit_push_node(l, edit_new_node("DequantizeLinear", dnode, din, 3, dn, NULL, 0));
    } else {
        l->oom = true;
    }
    free(sn), free(zn), free(qn), free(dn), free(qnode), free(dnode);
}

/* Points every node input that reads a target at its dequantized copy. */
static bool rewire_inputs(Onnx__NodeProto *n, const QdqPlan *p)
{
    for (size_t k = 0; k < n->n_input; k++) {
        if (!n->input[k][0] || qdq_target_index(p, n->input[k]) < 0)
            continue;
        char *dq = edit_cat(n->input[k], "_dequantized");
        if (!dq)
            return false;
        free(n->input[k]);
        n->input[k] = dq;
    }
    return true;
}

crun_status qdq_write(QdqPlan *p, const float (*range)[2], bool per_channel, const char *path, Diag *d)
{
    Onnx__GraphProto *g = graph_of(p);
    if (p->opset < 13)
        per_channel = false; /* DequantizeLinear's axis came with opset 13 */
    EditNodes l = {0};
    if (!write_weights(p, range, per_channel, &l))
        l.oom = true;
    for (int t = 0; t < p->n_targets; t++) /* targets that are graph inputs */
        if (edit_is_input(g, p->targets[t].name))
            push_qdq(&l, p, t, range);
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!rewire_inputs(n, p))
            l.oom = true;
        edit_push_node(&l, n);
        for (size_t k = 0; k < n->n_output; k++) {
            int t = qdq_target_index(p, n->output[k]);
            if (t >= 0)
                push_qdq(&l, p, t, range);
        }
    }
    if (l.oom) {
        free(l.v);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory writing the quantized model");
    }
    free(g->node);
    g->node = l.v;
    g->n_node = l.n;
    return edit_write(p->proto, path, d);
}
