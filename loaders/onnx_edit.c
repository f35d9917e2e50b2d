/* onnx_edit.c - see onnx_edit.h. */
#include "loaders/onnx_edit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Onnx__TensorProto *edit_find_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
            return g->initializer[i];
    return NULL;
}

bool edit_is_float(const Onnx__TensorProto *t)
{
    return t && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

int64_t edit_numel(const Onnx__TensorProto *t)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || (t->dims[i] > 0 && n > CRUN_MAX_NUMEL / t->dims[i]))
            return -1; /* (a hostile file: negative or overflowing dims) */
        n *= t->dims[i];
    }
    return n;
}

bool edit_has_floats(const Onnx__TensorProto *t)
{
    int64_t n = edit_numel(t);
    return n > 0 && (t->raw_data.len == (size_t)n * 4 || t->n_float_data == (size_t)n);
}

/* A copy of an initializer's float values (raw_data or float_data; malloc'd), NULL when
 * they do not match its dims. */
float *edit_floats(const Onnx__TensorProto *t)
{
    int64_t n = edit_numel(t);
    float *f = edit_has_floats(t) ? malloc((size_t)n * 4) : NULL;
    if (f)
        memcpy(f, t->raw_data.len ? (const void *)t->raw_data.data : (const void *)t->float_data, (size_t)n * 4);
    return f;
}

const Onnx__AttributeProto *edit_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

int64_t edit_attr_i(const Onnx__NodeProto *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = edit_attr(n, name);
    return a && a->has_i ? a->i : def;
}

float edit_attr_f(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = edit_attr(n, name);
    return a && a->has_f ? a->f : def;
}

void *edit_grow(void *arr, size_t n, size_t elem)
{
    return realloc(arr, (n + 1) * elem);
}

bool edit_push_init(Onnx__GraphProto *g, Onnx__TensorProto *t)
{
    Onnx__TensorProto **a = edit_grow(g->initializer, g->n_initializer, sizeof *a);
    if (!a)
        return false;
    g->initializer = a;
    a[g->n_initializer++] = t;
    return true;
}

/* A new initializer named base + suffix holding bytes of type dt with dims. */
Onnx__TensorProto *edit_new_tensor(const char *base, const char *suffix, int32_t dt, int rank, const int64_t *dims,
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


Onnx__NodeProto *edit_new_node(const char *op, const char *name, const char *const *in, int n_in, const char *out,
                               const char *attr, int64_t value)
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
    if (attr) {
        Onnx__AttributeProto *a = malloc(sizeof *a);
        n->attribute = malloc(sizeof *n->attribute);
        if (a && n->attribute) {
            onnx__attribute_proto__init(a);
            a->name = strdup(attr);
            a->has_type = 1;
            a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            a->has_i = 1;
            a->i = value;
            n->attribute[0] = a;
            n->n_attribute = 1;
        } else {
            free(a);
        }
    }
    return n; /* (a failed strdup leaves a NULL the packer refuses: reported on write) */
}

bool edit_in_list(const char *name, const char *const *list, int n)
{
    for (int i = 0; name && i < n; i++)
        if (!strcmp(list[i], name))
            return true;
    return false;
}

Onnx__AttributeProto *edit_push_attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = malloc(sizeof *a);
    Onnx__AttributeProto **grown = a ? edit_grow(n->attribute, n->n_attribute, sizeof *grown) : NULL;
    if (!grown) {
        free(a);
        return NULL;
    }
    n->attribute = grown;
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->has_type = 1;
    a->type = type;
    grown[n->n_attribute++] = a;
    return a->name ? a : NULL;
}

bool edit_add_attr_i(Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = edit_push_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a)
        a->has_i = 1, a->i = v;
    return a != NULL;
}

bool edit_set_domain(Onnx__NodeProto *n, const char *domain)
{
    char *d = strdup(domain);
    if (!d)
        return false;
    free(n->domain);
    n->domain = d;
    return true;
}

bool edit_import_domain(Onnx__ModelProto *m, const char *domain, int64_t version)
{
    for (size_t i = 0; i < m->n_opset_import; i++)
        if (m->opset_import[i]->domain && !strcmp(m->opset_import[i]->domain, domain))
            return true;
    Onnx__OperatorSetIdProto *op = malloc(sizeof *op);
    Onnx__OperatorSetIdProto **grown = op ? edit_grow(m->opset_import, m->n_opset_import, sizeof *grown) : NULL;
    if (!grown) {
        free(op);
        return false;
    }
    m->opset_import = grown;
    onnx__operator_set_id_proto__init(op);
    op->domain = strdup(domain);
    op->has_version = 1;
    op->version = version;
    grown[m->n_opset_import++] = op;
    return op->domain != NULL;
}

char *edit_cat(const char *a, const char *b)
{
    char *s = malloc(strlen(a) + strlen(b) + 1);
    if (s)
        sprintf(s, "%s%s", a, b);
    return s;
}

/* Drops initializer (and graph input) name: a DequantizeLinear now produces it. */
void edit_drop_init(Onnx__GraphProto *g, const char *name)
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

void edit_push_node(EditNodes *l, Onnx__NodeProto *n)
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

crun_status edit_write(const Onnx__ModelProto *m, const char *path, Diag *d)
{
    size_t size = onnx__model_proto__get_packed_size(m);
    uint8_t *bytes = malloc(size + 1);
    if (!bytes)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    onnx__model_proto__pack(m, bytes);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(bytes, 1, size, f) == size;
    if (f && fclose(f) != 0)
        ok = false;
    free(bytes);
    return ok ? CRUN_OK : diag_fail(d, CRUN_ERR_IO, "cannot write %s", path);
}

int edit_hoist_constants(Onnx__GraphProto *g)
{
    int moved = 0;
    size_t keep = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        Onnx__AttributeProto *a = n->op_type && !strcmp(n->op_type, "Constant") && n->n_output == 1 &&
                                          n->n_attribute == 1 && (!n->domain || !n->domain[0])
                                      ? n->attribute[0]
                                      : NULL;
        Onnx__TensorProto *t = a && a->name && !strcmp(a->name, "value") ? a->t : NULL;
        char *name = t ? strdup(n->output[0]) : NULL;
        if (!name || !edit_push_init(g, t)) {
            free(name);
            g->node[keep++] = n;
            continue;
        }
        free(t->name);
        t->name = name;
        a->t = NULL; /* now the graph's */
        onnx__node_proto__free_unpacked(n, NULL);
        moved++;
    }
    g->n_node = keep;
    return moved;
}

static bool in_infos(Onnx__ValueInfoProto *const *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->name && !strcmp(v[i]->name, name))
            return true;
    return false;
}

bool edit_is_output(const Onnx__GraphProto *g, const char *name) { return in_infos(g->output, g->n_output, name); }
bool edit_is_input(const Onnx__GraphProto *g, const char *name) { return in_infos(g->input, g->n_input, name); }

/* Uses of value name as a node input, plus one if it is a graph output. */
static int uses_of(const Onnx__GraphProto *g, const char *name)
{
    int n = edit_is_output(g, name);
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            n += !strcmp(g->node[i]->input[k], name);
    return n;
}

/* Replaces t's values by the n floats of v (raw data). */
static bool set_floats(Onnx__TensorProto *t, const float *v, int64_t n)
{
    uint8_t *raw = malloc((size_t)n * 4 + 1);
    if (!raw)
        return false;
    memcpy(raw, v, (size_t)n * 4);
    free(t->raw_data.data);
    free(t->float_data);
    t->float_data = NULL;
    t->n_float_data = 0;
    t->has_raw_data = 1;
    t->raw_data.data = raw;
    t->raw_data.len = (size_t)n * 4;
    return true;
}

/* The float initializer name with exactly n values, or NULL. */
static Onnx__TensorProto *floats_of(const Onnx__GraphProto *g, const char *name, int64_t n)
{
    Onnx__TensorProto *t = edit_find_init(g, name);
    return t && edit_is_float(t) && edit_has_floats(t) && edit_numel(t) == n ? t : NULL;
}

/* Folds BatchNormalization node bn into the Conv producing its input, when that Conv has
 * constant weights only it uses and BN's parameters are constants. */
static bool fold_one_bn(Onnx__GraphProto *g, Onnx__NodeProto *bn)
{
    if (bn->n_input != 5 || bn->n_output < 1 || (bn->n_output > 1 && bn->output[1][0]))
        return false;
    Onnx__NodeProto *conv = NULL;
    for (size_t i = 0; i < g->n_node && !conv; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (n->op_type && !strcmp(n->op_type, "Conv") && n->n_output == 1 && !strcmp(n->output[0], bn->input[0]))
            conv = n;
    }
    if (!conv || conv->n_input < 2 || uses_of(g, bn->input[0]) != 1 || uses_of(g, conv->input[1]) != 1)
        return false;
    Onnx__TensorProto *w = edit_find_init(g, conv->input[1]);
    if (!w || !edit_is_float(w) || !edit_has_floats(w) || w->n_dims < 3 || w->dims[0] <= 0)
        return false;
    int64_t M = w->dims[0], nw = edit_numel(w), per = nw / M;
    Onnx__TensorProto *gm = floats_of(g, bn->input[1], M), *bt = floats_of(g, bn->input[2], M);
    Onnx__TensorProto *mu = floats_of(g, bn->input[3], M), *vr = floats_of(g, bn->input[4], M);
    bool has_b = conv->n_input > 2 && conv->input[2][0];
    Onnx__TensorProto *b = has_b ? floats_of(g, conv->input[2], M) : NULL;
    if (!gm || !bt || !mu || !vr || (has_b && (!b || uses_of(g, conv->input[2]) != 1)))
        return false;
    float *wf = edit_floats(w), *gf = edit_floats(gm), *bf = edit_floats(bt), *mf = edit_floats(mu),
          *vf = edit_floats(vr), *cb = b ? edit_floats(b) : calloc((size_t)M, sizeof(float));
    double eps = edit_attr_f(bn, "epsilon", 1e-5f);
    bool ok = wf && gf && bf && mf && vf && cb;
    for (int64_t m = 0; ok && m < M; m++) {
        double scale = gf[m] / sqrt((double)vf[m] + eps);
        for (int64_t i = 0; i < per; i++)
            wf[m * per + i] = (float)(wf[m * per + i] * scale);
        cb[m] = (float)((cb[m] - mf[m]) * scale + bf[m]);
    }
    ok = ok && set_floats(w, wf, nw);
    if (ok && b) {
        ok = set_floats(b, cb, M);
    } else if (ok) { /* a new bias, and Conv's third input naming it */
        int64_t dm[1] = {M};
        Onnx__TensorProto *nb = edit_new_tensor(bn->output[0], "_folded_bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1,
                                                dm, cb, (size_t)M * 4);
        char **in = realloc(conv->input, 3 * sizeof *in);
        ok = nb && in && edit_push_init(g, nb);
        if (in)
            conv->input = in;
        if (ok) {
            if (conv->n_input == 3)
                free(conv->input[2]);
            conv->input[2] = strdup(nb->name);
            conv->n_input = 3;
            ok = conv->input[2] != NULL;
        }
    }
    char *out = ok ? strdup(bn->output[0]) : NULL;
    if (out) {
        free(conv->output[0]);
        conv->output[0] = out;
    }
    free(wf), free(gf), free(bf), free(mf), free(vf), free(cb);
    return out != NULL;
}

int edit_fold_batchnorm(Onnx__GraphProto *g)
{
    int folded = 0;
    for (size_t i = 0; i < g->n_node;) {
        Onnx__NodeProto *n = g->node[i];
        bool bn = n->op_type && !strcmp(n->op_type, "BatchNormalization") && (!n->domain || !n->domain[0]);
        if (!bn || !fold_one_bn(g, n)) {
            i++;
            continue;
        }
        /* Out of the list at once: the next fold scans every node (two BNs in a row). */
        onnx__node_proto__free_unpacked(n, NULL);
        memmove(&g->node[i], &g->node[i + 1], (g->n_node - i - 1) * sizeof *g->node);
        g->n_node--;
        folded++;
    }
    return folded;
}
