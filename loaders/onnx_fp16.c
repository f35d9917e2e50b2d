/* onnx_fp16.c - see onnx_fp16.h. */
#include "loaders/onnx_fp16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_edit.h"
#include "quant/fp16.h"

#define FP16_MIN_ELEMS 16 /* smaller constants (epsilons, scales) stay float */

/* Replaces initializer t by name_fp16 (float16) and pushes Cast(name_fp16) -> name. */
static bool convert_one(Onnx__GraphProto *g, Onnx__TensorProto *t, EditNodes *l)
{
    int64_t n = edit_numel(t);
    float *f = edit_floats(t);
    uint16_t *h = malloc((size_t)n * 2 + 2);
    char *name = strdup(t->name), *hname = edit_cat(t->name, "_fp16"), *cname = edit_cat(t->name, "_Cast");
    bool ok = f && h && name && hname && cname;
    if (ok) {
        for (int64_t i = 0; i < n; i++) {
            float v = isnan(f[i]) ? f[i] : fmaxf(-65504.0f, fminf(65504.0f, f[i]));
            h[i] = f32_to_fp16(v);
        }
        Onnx__TensorProto *th = edit_new_tensor(name, "_fp16", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, (int)t->n_dims,
                                                t->dims, h, (size_t)n * 2);
        ok = th && edit_push_init(g, th);
        if (ok) {
            const char *in[1] = {hname};
            edit_push_node(l, edit_new_node("Cast", cname, in, 1, name, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT));
            edit_drop_init(g, name); /* t is freed here */
        }
    }
    free(f), free(h), free(name), free(hname), free(cname);
    return ok;
}

crun_status fp16_convert(const void *data, size_t size, const char *path, int *n_converted, Diag *d)
{
    *n_converted = 0;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, data);
    if (!mp || !mp->graph) {
        if (mp)
            onnx__model_proto__free_unpacked(mp, NULL);
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "not a valid ONNX model");
    }
    Onnx__GraphProto *g = mp->graph;
    edit_hoist_constants(g);
    EditNodes l = {0};
    /* Collect first: converting drops and appends initializers. */
    size_t n_init = g->n_initializer;
    char **names = calloc(n_init + 1, sizeof *names);
    for (size_t i = 0; names && i < n_init; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        if (t->name && edit_is_float(t) && edit_has_floats(t) && edit_numel(t) >= FP16_MIN_ELEMS &&
            !edit_is_input(g, t->name))
            names[i] = strdup(t->name);
    }
    bool ok = names != NULL;
    for (size_t i = 0; ok && i < n_init; i++)
        if (names[i]) {
            ok = convert_one(g, edit_find_init(g, names[i]), &l);
            (*n_converted)++;
        }
    for (size_t i = 0; names && i < n_init; i++)
        free(names[i]);
    free(names);
    for (size_t i = 0; ok && i < g->n_node; i++) /* the Casts first, then the graph as it was */
        edit_push_node(&l, g->node[i]);
    crun_status st;
    if (!ok || l.oom) {
        /* the original nodes are still g's; only the new Casts are in l */
        for (size_t i = 0; i < l.n && i < (size_t)*n_converted; i++)
            onnx__node_proto__free_unpacked(l.v[i], NULL);
        free(l.v);
        st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory converting the model");
    } else {
        free(g->node);
        g->node = l.v;
        g->n_node = l.n;
        st = edit_write(mp, path, d);
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    return st;
}
