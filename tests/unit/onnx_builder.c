/* onnx_builder.c - see onnx_builder.h. */
#include "onnx_builder.h"

#include <stdlib.h>
#include <string.h>

struct OnnxBuilder {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    void **allocs;
    size_t n_allocs;
};

static void *ob_alloc(OnnxBuilder *b, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    void **a = realloc(b->allocs, (b->n_allocs + 1) * sizeof *a);
    if (!p || !a)
        abort();
    b->allocs = a;
    b->allocs[b->n_allocs++] = p;
    return p;
}

static char *ob_str(OnnxBuilder *b, const char *s)
{
    char *p = ob_alloc(b, strlen(s) + 1);
    strcpy(p, s);
    return p;
}

/* Appends item to a protobuf-c repeated field (count + array of pointers). */
#define OB_APPEND(b, arr, count, item) \
    do { \
        void **grown_ = ob_alloc((b), ((count) + 1) * sizeof(void *)); \
        if (count) \
            memcpy(grown_, (arr), (count) * sizeof(void *)); \
        grown_[(count)] = (item); \
        (arr) = (void *)grown_; \
        (count)++; \
    } while (0)

OnnxBuilder *ob_new(int64_t opset)
{
    OnnxBuilder *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.graph = &b->graph;
    b->graph.name = "test";
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->model.opset_import = b->opsets;
    b->model.n_opset_import = 1;
    return b;
}

Onnx__ModelProto *ob_model(OnnxBuilder *b) { return &b->model; }

void ob_free(OnnxBuilder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_allocs; i++)
        free(b->allocs[i]);
    free(b->allocs);
    free(b);
}

static Onnx__TypeProto *tensor_type(OnnxBuilder *b, crun_dtype t, int rank, const int64_t *dims,
                                    const char *const *syms)
{
    Onnx__TypeProto *tp = ob_alloc(b, sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = ob_alloc(b, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)t;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (rank < 0)
        return tp;
    Onnx__TensorShapeProto *sp = ob_alloc(b, sizeof *sp);
    onnx__tensor_shape_proto__init(sp);
    for (int k = 0; k < rank; k++) {
        Onnx__TensorShapeProto__Dimension *d = ob_alloc(b, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[k] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[k];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ob_str(b, syms && syms[k] ? syms[k] : "N");
        }
        OB_APPEND(b, sp->dim, sp->n_dim, d);
    }
    tt->shape = sp;
    return tp;
}

void ob_input(OnnxBuilder *b, const char *name, crun_dtype t, int rank, const int64_t *dims, const char *const *syms)
{
    Onnx__ValueInfoProto *vi = ob_alloc(b, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = ob_str(b, name);
    vi->type = tensor_type(b, t, rank, dims, syms);
    OB_APPEND(b, b->graph.input, b->graph.n_input, vi);
}

void ob_output(OnnxBuilder *b, const char *name)
{
    Onnx__ValueInfoProto *vi = ob_alloc(b, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = ob_str(b, name);
    OB_APPEND(b, b->graph.output, b->graph.n_output, vi);
}

Onnx__TensorProto *ob_tensor(OnnxBuilder *b, const char *name, crun_dtype t, int rank, const int64_t *dims,
                             const void *data)
{
    Onnx__TensorProto *tp = ob_alloc(b, sizeof *tp);
    onnx__tensor_proto__init(tp);
    tp->name = ob_str(b, name);
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t;
    tp->n_dims = (size_t)rank;
    tp->dims = ob_alloc(b, (size_t)(rank ? rank : 1) * sizeof(int64_t));
    size_t n = 1;
    for (int k = 0; k < rank; k++) {
        tp->dims[k] = dims[k];
        n *= (size_t)dims[k];
    }
    size_t bytes = n * crun_dtype_size(t);
    tp->has_raw_data = 1;
    tp->raw_data.len = bytes;
    tp->raw_data.data = ob_alloc(b, bytes);
    if (bytes)
        memcpy(tp->raw_data.data, data, bytes);
    return tp;
}

void ob_initializer(OnnxBuilder *b, Onnx__TensorProto *t) { OB_APPEND(b, b->graph.initializer, b->graph.n_initializer, t); }

void ob_init_f32(OnnxBuilder *b, const char *name, int rank, const int64_t *dims, const float *data)
{
    ob_initializer(b, ob_tensor(b, name, CRUN_DTYPE_FLOAT, rank, dims, data));
}

void ob_init_i64(OnnxBuilder *b, const char *name, int rank, const int64_t *dims, const int64_t *data)
{
    ob_initializer(b, ob_tensor(b, name, CRUN_DTYPE_INT64, rank, dims, data));
}

static void split_names(OnnxBuilder *b, const char *list, char ***out, size_t *n)
{
    *n = 0;
    *out = NULL;
    if (!list || !*list)
        return;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        char *s = ob_alloc(b, len + 1);
        memcpy(s, p, len);
        OB_APPEND(b, *out, *n, s);
        if (!p[len])
            break;
        p += len + 1;
    }
}

Onnx__NodeProto *ob_node(OnnxBuilder *b, const char *op, const char *inputs, const char *outputs)
{
    Onnx__NodeProto *n = ob_alloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = ob_str(b, op);
    n->domain = "";
    split_names(b, inputs, &n->input, &n->n_input);
    split_names(b, outputs, &n->output, &n->n_output);
    OB_APPEND(b, b->graph.node, b->graph.n_node, n);
    return n;
}

static Onnx__AttributeProto *new_attr(OnnxBuilder *b, Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = ob_alloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ob_str(b, name);
    a->has_type = 1;
    a->type = type;
    OB_APPEND(b, n->attribute, n->n_attribute, a);
    return a;
}

void ob_attr_int(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = new_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void ob_attr_ints(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, const int64_t *v, int count)
{
    Onnx__AttributeProto *a = new_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = ob_alloc(b, (size_t)(count ? count : 1) * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)count * sizeof *a->ints);
}

void ob_attr_float(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = new_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void ob_attr_string(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = new_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)ob_str(b, v);
}

void ob_attr_tensor(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
    Onnx__AttributeProto *a = new_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
}

uint8_t *ob_pack(OnnxBuilder *b, size_t *size)
{
    *size = onnx__model_proto__get_packed_size(&b->model);
    uint8_t *buf = malloc(*size ? *size : 1);
    if (!buf)
        abort();
    onnx__model_proto__pack(&b->model, buf);
    return buf;
}

crun_model *ob_load(OnnxBuilder *b)
{
    size_t size;
    uint8_t *buf = ob_pack(b, &size);
    crun_model *m = NULL;
    crun_model_load_memory(buf, size, &m);
    free(buf);
    return m;
}
