/* export.c - the trained net as an ONNX model (opset 13): float, and QDQ with the QAT
 * observers' ranges written by the same QDQ writer `crun quantize` uses. Each layer's
 * output tensor is named after the layer; the model's input is "input" and its output
 * "output" (an Identity of the last layer, so the QDQ writer quantizes the last layer's
 * result like any other). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/onnx_build.h"
#include "loaders/onnx_qdq.h"
#include "trainer/trainer.h"

#define EXPORT_OPSET 13

const char *net_tensor_name(const Net *net, int i)
{
    while (net->layers[i].kind == LAYER_IDENTITY || net->layers[i].kind == LAYER_DROPOUT)
        i = net->layers[i].in[0];
    return i == 0 ? "input" : net->layers[i].name;
}

/* Whether layer i's exported tensor is [N, C] rather than [N, C, H, W]. */
static bool is_flat(const Net *net, int i)
{
    while (net->layers[i].kind == LAYER_IDENTITY || net->layers[i].kind == LAYER_DROPOUT)
        i = net->layers[i].in[0];
    const Layer *l = &net->layers[i];
    switch (l->kind) {
    case LAYER_INPUT: return l->out.h == 1 && l->out.w == 1;
    case LAYER_LINEAR:
    case LAYER_FLATTEN:
    case LAYER_GAP: return true;
    case LAYER_CONV:
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL: return false;
    default: return is_flat(net, l->in[0]);
    }
}

static void name_cat(char *dst, size_t cap, const char *a, const char *b) { snprintf(dst, cap, "%s%s", a, b); }

static void add_param(OnnxBuild *b, const char *layer, const char *suffix, int rank, const int64_t *dims,
                      const float *data)
{
    char n[64];
    name_cat(n, sizeof n, layer, suffix);
    onnx_build_init(b, n, rank, dims, data);
}

/* The layer's weights (dims wd) and bias as initializers named w and bias. */
static void add_weights(OnnxBuild *b, const Layer *l, int rank, const int64_t *wd, char *w, char *bias)
{
    int64_t bd[1] = {l->cout};
    name_cat(w, 64, l->name, "_weight");
    name_cat(bias, 64, l->name, "_bias");
    onnx_build_init(b, w, rank, wd, l->weight.w);
    if (l->bias_on)
        onnx_build_init(b, bias, 1, bd, l->bias.w);
}

static void export_conv(OnnxBuild *b, const Net *net, const Layer *l, const char *x)
{
    int64_t cg = net->layers[l->in[0]].out.c / l->groups;
    int64_t wd[4] = {l->cout, cg, l->k, l->k};
    char w[64], bias[64];
    add_weights(b, l, 4, wd, w, bias);
    const char *in[3] = {x, w, bias};
    onnx_build_node(b, "Conv", l->name, in, l->bias_on ? 3 : 2, l->name);
    int64_t k[2] = {l->k, l->k}, s[2] = {l->stride, l->stride}, p[4] = {l->pad, l->pad, l->pad, l->pad};
    onnx_build_attr_ints(b, "kernel_shape", k, 2);
    onnx_build_attr_ints(b, "strides", s, 2);
    onnx_build_attr_ints(b, "pads", p, 4);
    onnx_build_attr_i(b, "group", l->groups);
}

static void export_linear(OnnxBuild *b, const Net *net, const Layer *l, const char *x)
{
    char w[64], bias[64], flat[64];
    const char *src = x;
    if (!is_flat(net, l->in[0])) { /* a 1x1 plane the trainer reads as a vector */
        name_cat(flat, sizeof flat, l->name, "_flat");
        onnx_build_node(b, "Flatten", flat, &x, 1, flat);
        src = flat;
    }
    int64_t wd[2] = {l->cout, l->weight.n / l->cout};
    add_weights(b, l, 2, wd, w, bias);
    const char *in[3] = {src, w, bias};
    onnx_build_node(b, "Gemm", l->name, in, l->bias_on ? 3 : 2, l->name);
    onnx_build_attr_i(b, "transB", 1);
}

static void export_bn(OnnxBuild *b, const Layer *l, const char *x)
{
    int64_t d[1] = {l->out.c};
    const char *suffix[4] = {"_scale", "_shift", "_mean", "_var"};
    const float *data[4] = {l->weight.w, l->bias.w, l->run_mean, l->run_var};
    char names[4][64];
    for (int i = 0; i < 4; i++) {
        add_param(b, l->name, suffix[i], 1, d, data[i]);
        name_cat(names[i], sizeof names[i], l->name, suffix[i]);
    }
    const char *in[5] = {x, names[0], names[1], names[2], names[3]};
    onnx_build_node(b, "BatchNormalization", l->name, in, 5, l->name);
    onnx_build_attr_f(b, "epsilon", l->eps);
}

/* A scalar initializer layer_suffix = v; writes its name into out. */
static void scalar(OnnxBuild *b, const char *layer, const char *suffix, float v, char *out, size_t cap)
{
    name_cat(out, cap, layer, suffix);
    onnx_build_init(b, out, 0, NULL, &v);
}

/* GELU as x * 0.5 * (1 + erf(x / sqrt 2)), the pattern the runtime fuses back. */
static void export_gelu(OnnxBuild *b, const Layer *l, const char *x)
{
    char r2[64], one[64], half[64], t[4][64];
    scalar(b, l->name, "_sqrt2", 1.41421356f, r2, sizeof r2);
    scalar(b, l->name, "_one", 1.0f, one, sizeof one);
    scalar(b, l->name, "_half", 0.5f, half, sizeof half);
    for (int i = 0; i < 4; i++)
        snprintf(t[i], sizeof t[i], "%s_t%d", l->name, i);
    const char *a[2] = {x, r2}, *e[1] = {t[0]}, *c[2] = {t[1], one}, *m[2] = {x, t[2]}, *h[2] = {t[3], half};
    onnx_build_node(b, "Div", t[0], a, 2, t[0]);
    onnx_build_node(b, "Erf", t[1], e, 1, t[1]);
    onnx_build_node(b, "Add", t[2], c, 2, t[2]);
    onnx_build_node(b, "Mul", t[3], m, 2, t[3]);
    onnx_build_node(b, "Mul", l->name, h, 2, l->name);
}

static void export_act(OnnxBuild *b, const Layer *l, const char *x)
{
    static const char *const ops[] = {[TACT_RELU] = "Relu", [TACT_LEAKY] = "LeakyRelu", [TACT_SIGMOID] = "Sigmoid",
                                      [TACT_TANH] = "Tanh"};
    if (l->act == TACT_GELU) {
        export_gelu(b, l, x);
    } else if (l->act == TACT_RELU6) {
        char lo[64], hi[64];
        scalar(b, l->name, "_min", 0.0f, lo, sizeof lo);
        scalar(b, l->name, "_max", 6.0f, hi, sizeof hi);
        const char *in[3] = {x, lo, hi};
        onnx_build_node(b, "Clip", l->name, in, 3, l->name);
    } else {
        onnx_build_node(b, ops[l->act], l->name, &x, 1, l->name);
        if (l->act == TACT_LEAKY)
            onnx_build_attr_f(b, "alpha", l->alpha);
    }
}

static void export_pool(OnnxBuild *b, const Layer *l, const char *x)
{
    onnx_build_node(b, l->kind == LAYER_MAXPOOL ? "MaxPool" : "AveragePool", l->name, &x, 1, l->name);
    int64_t k[2] = {l->k, l->k}, s[2] = {l->stride, l->stride}, p[4] = {l->pad, l->pad, l->pad, l->pad};
    onnx_build_attr_ints(b, "kernel_shape", k, 2);
    onnx_build_attr_ints(b, "strides", s, 2);
    onnx_build_attr_ints(b, "pads", p, 4);
}

static void export_layer(OnnxBuild *b, const Net *net, int i)
{
    const Layer *l = &net->layers[i];
    const char *x = net_tensor_name(net, l->in[0]);
    char tmp[64];
    switch (l->kind) {
    case LAYER_CONV: export_conv(b, net, l, x); break;
    case LAYER_LINEAR: export_linear(b, net, l, x); break;
    case LAYER_BN: export_bn(b, l, x); break;
    case LAYER_ACT: export_act(b, l, x); break;
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL: export_pool(b, l, x); break;
    case LAYER_GAP: {
        name_cat(tmp, sizeof tmp, l->name, "_4d");
        const char *t = tmp;
        onnx_build_node(b, "GlobalAveragePool", tmp, &x, 1, tmp);
        onnx_build_node(b, "Flatten", l->name, &t, 1, l->name);
        break;
    }
    case LAYER_FLATTEN: onnx_build_node(b, "Flatten", l->name, &x, 1, l->name); break;
    case LAYER_ADD:
    case LAYER_CONCAT: {
        const char *in[2] = {x, net_tensor_name(net, l->in[1])};
        onnx_build_node(b, l->kind == LAYER_ADD ? "Add" : "Concat", l->name, in, 2, l->name);
        if (l->kind == LAYER_CONCAT)
            onnx_build_attr_i(b, "axis", 1);
        break;
    }
    default: break; /* input, dropout (identity at inference) and folded layers */
    }
}

crun_status net_onnx_bytes(const Net *net, uint8_t **bytes, size_t *size, Diag *d)
{
    OnnxBuild *b = onnx_build_new(EXPORT_OPSET, "crun-trainer");
    if (!b)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    TShape in = net->layers[0].out, out = net->layers[net->n - 1].out;
    int64_t id[4] = {-1, in.c, in.h, in.w}, od[4] = {-1, out.c, out.h, out.w};
    onnx_build_value(b, false, "input", is_flat(net, 0) ? 2 : 4, id);
    for (int i = 1; i < net->n; i++)
        export_layer(b, net, i);
    const char *last = net_tensor_name(net, net->n - 1);
    onnx_build_node(b, "Identity", "output", &last, 1, "output");
    onnx_build_value(b, true, "output", is_flat(net, net->n - 1) ? 2 : 4, od);
    crun_status st = onnx_build_bytes(b, bytes, size, d);
    onnx_build_free(b);
    return st;
}

static crun_status write_bytes(const char *path, const uint8_t *bytes, size_t size, Diag *d)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(bytes, 1, size, f) == size;
    if (f && fclose(f) != 0)
        ok = false;
    return ok ? CRUN_OK : diag_fail(d, CRUN_ERR_IO, "cannot write %s", path);
}

crun_status net_export_onnx(const Net *net, const char *path, Diag *d)
{
    uint8_t *bytes;
    size_t size;
    crun_status st = net_onnx_bytes(net, &bytes, &size, d);
    if (st == CRUN_OK)
        st = write_bytes(path, bytes, size, d);
    free(bytes);
    return st;
}

crun_status net_qdq_plan(const Net *net, struct QdqPlan *p, Diag *d)
{
    uint8_t *bytes;
    size_t size;
    crun_status st = net_onnx_bytes(net, &bytes, &size, d);
    if (st != CRUN_OK)
        return st;
    st = qdq_plan_make(bytes, size, NULL, 0, p, d);
    free(bytes);
    return st;
}

crun_status net_export_qdq(const Net *net, const char *path, Diag *d)
{
    if (!net->qat)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "an int8 export needs quantization-aware training or calibration");
    QdqPlan p;
    crun_status st = net_qdq_plan(net, &p, d);
    if (st != CRUN_OK)
        return st;
    float (*range)[2] = calloc((size_t)p.n_targets + 1, sizeof *range);
    if (!range)
        st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    else if (!qat_ranges(net, &p, range))
        st = diag_fail(d, CRUN_ERR_RUNTIME, "a quantized tensor of the export has no observer");
    else
        st = qdq_write(&p, range, true, path, d);
    free(range);
    qdq_plan_free(&p);
    return st;
}
