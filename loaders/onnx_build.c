/* onnx_build.c - see onnx_build.h. The model is built as protobuf-c messages allocated
 * with malloc, so protobuf-c's own free releases all of it. */
#include "loaders/onnx_build.h"

#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_edit.h"

struct OnnxBuild {
    Onnx__ModelProto *m;
    Onnx__NodeProto *last;
    bool oom;
};

/* Appends item to the array *arr of *n pointers. */
static bool push_ptr(void ***arr, size_t *n, void *item)
{
    void **grown = item ? edit_grow(*arr, *n, sizeof *grown) : NULL;
    if (!grown)
        return false;
    grown[(*n)++] = item;
    *arr = grown;
    return true;
}

OnnxBuild *onnx_build_new(int opset, const char *producer)
{
    OnnxBuild *b = calloc(1, sizeof *b);
    Onnx__ModelProto *m = malloc(sizeof *m);
    Onnx__GraphProto *g = malloc(sizeof *g);
    if (!b || !m || !g) {
        free(b), free(m), free(g);
        return NULL;
    }
    onnx__model_proto__init(m);
    onnx__graph_proto__init(g);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->producer_name = strdup(producer);
    m->graph = g;
    g->name = strdup("main");
    b->m = m;
    if (!m->producer_name || !g->name || !edit_import_domain(m, "", opset))
        b->oom = true;
    return b;
}

void onnx_build_free(OnnxBuild *b)
{
    if (!b)
        return;
    onnx__model_proto__free_unpacked(b->m, NULL);
    free(b);
}

static Onnx__TypeProto *float_type(int rank, const int64_t *dims)
{
    Onnx__TypeProto *t = malloc(sizeof *t);
    Onnx__TypeProto__Tensor *tt = malloc(sizeof *tt);
    Onnx__TensorShapeProto *sh = malloc(sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dv = calloc((size_t)rank + 1, sizeof *dv);
    if (!t || !tt || !sh || !dv) {
        free(t), free(tt), free(sh), free(dv);
        return NULL;
    }
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    sh->dim = dv;
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = malloc(sizeof *d);
        if (!d)
            break;
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = strdup("N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        dv[sh->n_dim++] = d;
    }
    return t;
}

void onnx_build_value(OnnxBuild *b, bool output, const char *name, int rank, const int64_t *dims)
{
    Onnx__GraphProto *g = b->m->graph;
    Onnx__ValueInfoProto *v = malloc(sizeof *v);
    if (!v) {
        b->oom = true;
        return;
    }
    onnx__value_info_proto__init(v);
    v->name = strdup(name);
    v->type = float_type(rank, dims);
    bool ok = v->name && v->type;
    ok = output ? push_ptr((void ***)&g->output, &g->n_output, v) && ok
                : push_ptr((void ***)&g->input, &g->n_input, v) && ok;
    if (!ok)
        b->oom = true;
}

void onnx_build_init(OnnxBuild *b, const char *name, int rank, const int64_t *dims, const float *data)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    Onnx__TensorProto *t = edit_new_tensor(name, "", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims, data,
                                           (size_t)n * sizeof(float));
    if (!t || !edit_push_init(b->m->graph, t))
        b->oom = true;
}

void onnx_build_node(OnnxBuild *b, const char *op, const char *name, const char *const *in, int n_in,
                     const char *out)
{
    Onnx__GraphProto *g = b->m->graph;
    b->last = edit_new_node(op, name, in, n_in, out, NULL, 0);
    if (!push_ptr((void ***)&g->node, &g->n_node, b->last)) {
        b->oom = true;
        b->last = NULL;
    }
}

static Onnx__AttributeProto *new_attr(OnnxBuild *b, const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = b->last ? edit_push_attr(b->last, name, type) : NULL;
    if (!a)
        b->oom = true;
    return a;
}

void onnx_build_attr_i(OnnxBuild *b, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = new_attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a)
        a->has_i = 1, a->i = v;
}

void onnx_build_attr_f(OnnxBuild *b, const char *name, float v)
{
    Onnx__AttributeProto *a = new_attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a)
        a->has_f = 1, a->f = v;
}

void onnx_build_attr_ints(OnnxBuild *b, const char *name, const int64_t *v, int n)
{
    Onnx__AttributeProto *a = new_attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (!a)
        return;
    a->ints = malloc((size_t)n * sizeof *a->ints + 1);
    if (!a->ints) {
        b->oom = true;
        return;
    }
    memcpy(a->ints, v, (size_t)n * sizeof *v);
    a->n_ints = (size_t)n;
}

crun_status onnx_build_bytes(OnnxBuild *b, uint8_t **bytes, size_t *size, Diag *d)
{
    *bytes = NULL;
    if (b->oom)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory building the model");
    *size = onnx__model_proto__get_packed_size(b->m);
    *bytes = malloc(*size + 1);
    if (!*bytes)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    onnx__model_proto__pack(b->m, *bytes);
    return CRUN_OK;
}
