/* onnx_qdq.c - see onnx_qdq.h. */
#include "loaders/onnx_qdq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "quant/quant.h"

/* Messages here use protobuf-c's default allocator (malloc), so nodes and tensors added
 * with malloc are freed with the rest of the message. */

static Onnx__GraphProto *graph_of(const QdqPlan *p) { return ((Onnx__ModelProto *)p->proto)->graph; }

static Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
            return g->initializer[i];
    return NULL;
}

static bool is_float_init(const Onnx__TensorProto *t)
{
    return t && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

static int64_t init_numel(const Onnx__TensorProto *t)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++)
        n *= t->dims[i];
    return n;
}

static bool has_floats(const Onnx__TensorProto *t)
{
    int64_t n = init_numel(t);
    return n > 0 && (t->raw_data.len == (size_t)n * 4 || t->n_float_data == (size_t)n);
}

/* A copy of an initializer's float values (raw_data or float_data; malloc'd), NULL when
 * they do not match its dims. */
static float *init_floats(const Onnx__TensorProto *t)
{
    int64_t n = init_numel(t);
    float *f = has_floats(t) ? malloc((size_t)n * 4) : NULL;
    if (f)
        memcpy(f, t->raw_data.len ? (const void *)t->raw_data.data : (const void *)t->float_data, (size_t)n * 4);
    return f;
}

static const Onnx__AttributeProto *node_attr_pb(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = node_attr_pb(n, name);
    return a && a->has_i ? a->i : def;
}

static float attr_f(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = node_attr_pb(n, name);
    return a && a->has_f ? a->f : def;
}

static bool in_list(const char *name, const char *const *list, int n)
{
    for (int i = 0; name && i < n; i++)
        if (!strcmp(list[i], name))
            return true;
    return false;
}

/* ---- finding the targets ---- */

static int target_index(const QdqPlan *p, const char *name)
{
    for (int i = 0; i < p->n_targets; i++)
        if (!strcmp(p->targets[i].name, name))
            return i;
    return -1;
}

static int add_target(QdqPlan *p, const char *name, int tie)
{
    int i = target_index(p, name);
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
    if (consumers(g, n->output[0], &c) == 1 && c->n_output == 1 &&
        (!strcmp(c->op_type, "Relu") || !strcmp(c->op_type, "Clip")) && (!c->domain || !c->domain[0]))
        return c->output[0];
    return n->output[0];
}

static bool add_op(QdqPlan *p, const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    bool conv = !strcmp(n->op_type, "Conv"), gemm = !strcmp(n->op_type, "Gemm");
    if (n->n_input < 2 || n->n_output < 1)
        return true;
    const Onnx__TensorProto *w = find_init(g, n->input[1]);
    if (!is_float_init(w) || !has_floats(w) || (conv && w->n_dims < 3) || (!conv && w->n_dims != 2))
        return true; /* weights computed at run time: stays float */
    if (gemm && (attr_i(n, "transA", 0) || attr_f(n, "alpha", 1) != 1 || attr_f(n, "beta", 1) != 1))
        return true;
    const char *b = n->n_input > 2 && n->input[2][0] ? n->input[2] : NULL;
    if (b && (!is_float_init(find_init(g, b)) || !has_floats(find_init(g, b))))
        b = NULL; /* (a non-constant bias stays a float input) */
    int x = add_target(p, n->input[0], -1);
    if (x < 0 || add_target(p, output_target(g, n), -1) < 0)
        return false;
    QdqOp *ops = realloc(p->ops, (size_t)(p->n_ops + 1) * sizeof *ops);
    if (!ops)
        return false;
    p->ops = ops;
    int axis = conv ? 0 : gemm && attr_i(n, "transB", 0) ? 0 : 1;
    ops[p->n_ops++] = (QdqOp){strdup(n->input[1]), b ? strdup(b) : NULL, x, axis};
    return true;
}

static bool plan_node(QdqPlan *p, const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return true;
    const char *op = n->op_type;
    if (!strcmp(op, "Conv") || !strcmp(op, "MatMul") || !strcmp(op, "Gemm"))
        return add_op(p, g, n);
    if (!strcmp(op, "Add") && n->n_input == 2 && !find_init(g, n->input[0]) && !find_init(g, n->input[1]))
        return add_target(p, n->input[0], -1) >= 0 && add_target(p, n->input[1], -1) >= 0 &&
               add_target(p, output_target(g, n), -1) >= 0;
    if (!strcmp(op, "MaxPool") && n->n_output == 1) {
        int x = target_index(p, n->input[0]);
        return x < 0 || add_target(p, n->output[0], x) >= 0;
    }
    return true;
}

crun_status qdq_plan_make(const void *data, size_t size, const char *const *exclude, int n_exclude, QdqPlan *p,
                          Diag *d)
{
    memset(p, 0, sizeof *p);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, data);
    if (!mp || !mp->graph)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "not a valid ONNX model");
    p->proto = mp;
    for (size_t i = 0; i < mp->n_opset_import; i++)
        if (!mp->opset_import[i]->domain || !mp->opset_import[i]->domain[0])
            p->opset = (int)mp->opset_import[i]->version;
    if (p->opset < 10) {
        qdq_plan_free(p);
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "quantizing needs opset 10 or later (the model imports %d)",
                         p->opset);
    }
    const Onnx__GraphProto *g = mp->graph;
    for (size_t i = 0; i < g->n_node; i++) {
        if (in_list(g->node[i]->name, exclude, n_exclude))
            continue;
        if (!plan_node(p, g, g->node[i])) {
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
    free(p->targets);
    free(p->ops);
    if (p->proto)
        onnx__model_proto__free_unpacked(p->proto, NULL);
    memset(p, 0, sizeof *p);
}

/* ---- building messages ---- */

static void *grow(void *arr, size_t n, size_t elem)
{
    return realloc(arr, (n + 1) * elem);
}

static bool push_init(Onnx__GraphProto *g, Onnx__TensorProto *t)
{
    Onnx__TensorProto **a = grow(g->initializer, g->n_initializer, sizeof *a);
    if (!a)
        return false;
    g->initializer = a;
    a[g->n_initializer++] = t;
    return true;
}

/* A new initializer named base + suffix holding bytes of type dt with dims. */
static Onnx__TensorProto *new_tensor(const char *base, const char *suffix, int32_t dt, int rank, const int64_t *dims,
                                     const void *bytes, size_t n_bytes)
{
    Onnx__TensorProto *t = malloc(sizeof *t);
    char *name = malloc(strlen(base) + strlen(suffix) + 1);
    int64_t *dm = malloc((size_t)(rank + 1) * sizeof *dm);
    uint8_t *raw = malloc(n_bytes + 1);
    if (!t || !name || !dm || !raw) {
        free(t), free(name), free(dm), free(raw);
        return NULL;
    }
    onnx__tensor_proto__init(t);
    sprintf(name, "%s%s", base, suffix);
    if (rank > 0)
        memcpy(dm, dims, (size_t)rank * sizeof *dm);
    memcpy(raw, bytes, n_bytes);
    t->name = name;
    t->n_dims = (size_t)rank;
    t->dims = dm;
    t->has_data_type = 1;
    t->data_type = dt;
    t->has_raw_data = 1;
    t->raw_data.len = n_bytes;
    t->raw_data.data = raw;
    return t;
}

/* A node op(inputs) -> output; axis >= 0 adds that attribute. */
static Onnx__NodeProto *new_node(const char *op, const char *name, const char *const *in, int n_in, const char *out,
                                 int axis)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    char **ins = calloc((size_t)n_in, sizeof *ins), **outs = calloc(1, sizeof *outs);
    if (!n || !ins || !outs) {
        free(n), free(ins), free(outs);
        return NULL;
    }
    onnx__node_proto__init(n);
    n->op_type = strdup(op);
    n->name = strdup(name);
    n->domain = strdup("");
    n->n_input = (size_t)n_in;
    n->input = ins;
    for (int i = 0; i < n_in; i++)
        ins[i] = strdup(in[i]);
    n->n_output = 1;
    n->output = outs;
    outs[0] = strdup(out);
    if (axis >= 0) {
        Onnx__AttributeProto *a = malloc(sizeof *a);
        n->attribute = malloc(sizeof *n->attribute);
        if (a && n->attribute) {
            onnx__attribute_proto__init(a);
            a->name = strdup("axis");
            a->has_type = 1;
            a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            a->has_i = 1;
            a->i = axis;
            n->attribute[0] = a;
            n->n_attribute = 1;
        } else {
            free(a);
        }
    }
    return n; /* (a failed strdup leaves a NULL the packer refuses: reported on write) */
}

static char *cat(const char *a, const char *b)
{
    char *s = malloc(strlen(a) + strlen(b) + 1);
    if (s)
        sprintf(s, "%s%s", a, b);
    return s;
}

/* ---- the calibration model ---- */

static bool is_output(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && !strcmp(g->output[i]->name, name))
            return true;
    return false;
}

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
    memcpy(outs, orig, n_orig * sizeof *outs);
    size_t n = n_orig;
    for (int i = 0; i < p->n_targets; i++) {
        if (is_output(g, p->targets[i].name) || find_init(g, p->targets[i].name))
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
    float *f = init_floats(w);
    int64_t n = init_numel(w), C = per_channel ? w->dims[axis] : 1;
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
        s[c] = s[c] > 0 ? s[c] / 127.0f : 1.0f;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = per_channel ? i / inner % C : 0;
        q[i] = (int8_t)quant_quantize(f[i], s[c], 0, (QuantRange){-127, 127});
    }
    int64_t dc[1] = {C};
    Onnx__TensorProto *tq = new_tensor(w->name, "_quantized", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, (int)w->n_dims,
                                       w->dims, q, (size_t)n);
    Onnx__TensorProto *ts = new_tensor(w->name, "_scale", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, per_channel ? 1 : 0,
                                       dc, s, (size_t)C * 4);
    Onnx__TensorProto *tz = new_tensor(w->name, "_zero_point", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, per_channel ? 1 : 0,
                                       dc, z, (size_t)C);
    free(f), free(q), free(z);
    *scales = s;
    *n_scales = C;
    return tq && ts && tz && push_init(g, tq) && push_init(g, ts) && push_init(g, tz);
}

/* int32 bias with scale sx * sw[m], zero point 0. */
static bool quantize_bias(Onnx__GraphProto *g, Onnx__TensorProto *b, float sx, const float *sw, int64_t n_sw)
{
    float *f = init_floats(b);
    int64_t n = init_numel(b);
    int32_t *q = malloc((size_t)n * 4 + 4), *z = calloc((size_t)n + 1, 4);
    float *s = malloc((size_t)n * 4 + 4);
    if (!f || !q || !z || !s || (n_sw != 1 && n_sw != n)) {
        free(f), free(q), free(z), free(s);
        return false;
    }
    for (int64_t m = 0; m < n; m++) {
        s[m] = sx * sw[n_sw == 1 ? 0 : m];
        double v = s[m] > 0 ? nearbyint((double)f[m] / s[m]) : 0;
        q[m] = v > INT32_MAX ? INT32_MAX : v < -INT32_MAX ? -INT32_MAX : (int32_t)v;
    }
    int64_t dn[1] = {n};
    Onnx__TensorProto *tq = new_tensor(b->name, "_quantized", ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, dn, q,
                                       (size_t)n * 4);
    Onnx__TensorProto *ts = new_tensor(b->name, "_scale", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, dn, s, (size_t)n * 4);
    Onnx__TensorProto *tz = new_tensor(b->name, "_zero_point", ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, dn, z,
                                       (size_t)n * 4);
    free(f), free(q), free(z), free(s);
    return tq && ts && tz && push_init(g, tq) && push_init(g, ts) && push_init(g, tz);
}

/* Drops initializer (and graph input) name: a DequantizeLinear now produces it. */
static void drop_init(Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name)) {
            onnx__tensor_proto__free_unpacked(g->initializer[i], NULL);
            memmove(&g->initializer[i], &g->initializer[i + 1], (g->n_initializer - i - 1) * sizeof *g->initializer);
            g->n_initializer--;
            break;
        }
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && !strcmp(g->input[i]->name, name)) {
            onnx__value_info_proto__free_unpacked(g->input[i], NULL);
            memmove(&g->input[i], &g->input[i + 1], (g->n_input - i - 1) * sizeof *g->input);
            g->n_input--;
            break;
        }
}

/* Node list under construction. */
typedef struct NodeList {
    Onnx__NodeProto **v;
    size_t n, cap;
    bool oom;
} NodeList;

static void push_node(NodeList *l, Onnx__NodeProto *n)
{
    if (!n) {
        l->oom = true;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        Onnx__NodeProto **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = true;
            onnx__node_proto__free_unpacked(n, NULL);
            return;
        }
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = n;
}

/* DequantizeLinear(name_quantized, name_scale, name_zero_point) -> name. */
static void push_dq_init(NodeList *l, const char *name, int axis)
{
    char *q = cat(name, "_quantized"), *s = cat(name, "_scale"), *z = cat(name, "_zero_point"), *nn = cat(name, "_DequantizeLinear");
    if (q && s && z && nn) {
        const char *in[3] = {q, s, z};
        push_node(l, new_node("DequantizeLinear", nn, in, 3, name, axis));
    } else {
        l->oom = true;
    }
    free(q), free(s), free(z), free(nn);
}

static bool write_weights(QdqPlan *p, const float (*range)[2], bool per_channel, NodeList *l)
{
    Onnx__GraphProto *g = graph_of(p);
    for (int i = 0; i < p->n_ops; i++) {
        const QdqOp *op = &p->ops[i];
        Onnx__TensorProto *w = find_init(g, op->w);
        if (!w || !is_float_init(w))
            continue; /* quantized already (shared by an earlier op) */
        float *sw = NULL;
        int64_t n_sw = 0;
        if (!quantize_weights(g, w, op->w_axis, per_channel, &sw, &n_sw))
            return false;
        push_dq_init(l, op->w, per_channel ? op->w_axis : -1);
        Onnx__TensorProto *b = op->b ? find_init(g, op->b) : NULL;
        if (b && is_float_init(b)) {
            float sx;
            int32_t zx;
            int r = p->targets[op->x_target].tie >= 0 ? p->targets[op->x_target].tie : op->x_target;
            quant_params_from_range(range[r][0], range[r][1], QUANT_U8, &sx, &zx);
            if (!(sx > 0))
                sx = 1.0f; /* as push_qdq does */
            if (!quantize_bias(g, b, sx, sw, n_sw)) {
                free(sw);
                return false;
            }
            push_dq_init(l, op->b, 0);
            drop_init(g, op->b);
        }
        free(sw);
        drop_init(g, op->w);
    }
    return true;
}

/* Q and DQ of target t right after its producer; consumers read name_dequantized. */
static void push_qdq(NodeList *l, const QdqPlan *p, int t, const float (*range)[2])
{
    Onnx__GraphProto *g = graph_of(p);
    const char *name = p->targets[t].name;
    int r = p->targets[t].tie >= 0 ? p->targets[t].tie : t;
    float s;
    int32_t z;
    quant_params_from_range(range[r][0], range[r][1], QUANT_U8, &s, &z);
    if (!(s > 0))
        s = 1.0f; /* a tensor that was always 0: any scale is exact */
    uint8_t zb = (uint8_t)z;
    char *sn = cat(name, "_scale"), *zn = cat(name, "_zero_point"), *qn = cat(name, "_quantized");
    char *dn = cat(name, "_dequantized"), *qnode = cat(name, "_QuantizeLinear"), *dnode = cat(name, "_DequantizeLinear");
    if (sn && zn && qn && dn && qnode && dnode) {
        Onnx__TensorProto *ts = new_tensor(sn, "", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL, &s, 4);
        Onnx__TensorProto *tz = new_tensor(zn, "", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 0, NULL, &zb, 1);
        if (!ts || !tz || !push_init(g, ts) || !push_init(g, tz))
            l->oom = true;
        const char *qin[3] = {name, sn, zn}, *din[3] = {qn, sn, zn};
        push_node(l, new_node("QuantizeLinear", qnode, qin, 3, qn, -1));
        push_node(l, new_node("DequantizeLinear", dnode, din, 3, dn, -1));
    } else {
        l->oom = true;
    }
    free(sn), free(zn), free(qn), free(dn), free(qnode), free(dnode);
}

/* Points every node input that reads a target at its dequantized copy. */
static bool rewire_inputs(Onnx__NodeProto *n, const QdqPlan *p)
{
    for (size_t k = 0; k < n->n_input; k++) {
        if (!n->input[k][0] || target_index(p, n->input[k]) < 0)
            continue;
        char *dq = cat(n->input[k], "_dequantized");
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
    NodeList l = {0};
    if (!write_weights(p, range, per_channel, &l))
        l.oom = true;
    for (int t = 0; t < p->n_targets; t++) /* targets that are graph inputs */
        for (size_t i = 0; i < g->n_input; i++)
            if (!strcmp(g->input[i]->name, p->targets[t].name))
                push_qdq(&l, p, t, range);
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!rewire_inputs(n, p))
            l.oom = true;
        push_node(&l, n);
        for (size_t k = 0; k < n->n_output; k++) {
            int t = target_index(p, n->output[k]);
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
    size_t size = onnx__model_proto__get_packed_size(p->proto);
    uint8_t *bytes = malloc(size + 1);
    if (!bytes)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    onnx__model_proto__pack(p->proto, bytes);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(bytes, 1, size, f) == size;
    if (f && fclose(f) != 0)
        ok = false;
    free(bytes);
    if (!ok)
        return diag_fail(d, CRUN_ERR_IO, "cannot write %s", path);
    return CRUN_OK;
}
