/* registry.c - the op table and the helpers every op family shares. */
#include "ops/registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/fp16.h"
#include "runtime/packcache.h"

/* A selective build (cmake -DCRUN_OPS=...) lists only its ops, generated from ops.def:
 * the linker then drops every other op and its kernels. */
#ifdef CRUN_SELECTIVE
#define CRUN_OPS_DEF "ops_selected.def"
#else
#define CRUN_OPS_DEF "ops/ops.def"
#endif

#define OP(id, domain, name) extern const OpDesc op_##id;
#include CRUN_OPS_DEF
#undef OP

static const OpDesc *const op_table[] = {
#define OP(id, domain, name) &op_##id,
#include CRUN_OPS_DEF
#undef OP
};

const OpDesc *op_lookup(const char *domain, const char *name)
{
    if (strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < CRUN_ARRAY_LEN(op_table); i++)
        if (strcmp(op_table[i]->name, name) == 0 && strcmp(op_table[i]->domain, domain) == 0)
            return op_table[i];
    return NULL;
}

static _Atomic int reference_only = -1; /* -1: not decided yet (read CRUN_KERNELS once) */

void kernels_use_reference(bool on) { reference_only = on; }

static bool use_reference(void)
{
    if (reference_only < 0) {
        const char *env = getenv("CRUN_KERNELS");
        reference_only = env && strcmp(env, "reference") == 0;
    }
    return reference_only == 1;
}

const KernelVariant *op_choose_kernel(const OpDesc *op, const PrepCtx *c)
{
    /* Variants are listed best first; the last one that applies is the reference. */
    const KernelVariant *chosen = NULL;
    const KernelVariant *pin = c->node->kernel;
    /* A compiled model's choice stands, so its packed blocks are the ones planned for. */
    if (pin && isa_allowed(pin->isa) && (!pin->applies || pin->applies(c, pin->data)))
        return pin;
    bool reference = use_reference();
    for (const KernelVariant *k = op->kernels; k && k->name; k++)
        if (isa_allowed(k->isa) && (!k->applies || k->applies(c, k->data))) {
            chosen = k;
            if (!reference)
                break;
        }
    return chosen;
}

crun_status node_fail(const Node *n, Diag *d, crun_status st, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return diag_fail(d, st, "node '%s' (%s): %s", n->name, n->op_type, msg);
}

static crun_status parse_node(Node *n, int extra_inputs, Diag *d)
{
    const OpDesc *op = n->op;
    int n_in = n->n_in - n->n_implicit, n_out = n->n_out;
    /* Trailing omitted optional inputs and outputs do not count. */
    while (n_in > 0 && n->in[n_in - 1] < 0)
        n_in--;
    while (n_out > 0 && n->out[n_out - 1] < 0)
        n_out--;
    if (n_in < op->min_in || (op->max_in >= 0 && n_in > op->max_in + extra_inputs)) {
        if (op->max_in < 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "has %d inputs, expected at least %d", n_in, op->min_in);
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "has %d inputs, expected %d to %d", n_in, op->min_in,
                         op->max_in);
    }
    if (n_out < op->min_out || (op->max_out >= 0 && n_out > op->max_out))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "has %d outputs, expected %d to %d", n_out, op->min_out,
                         op->max_out);
    for (int i = 0; i < op->min_in; i++)
        if (n->in[i] < 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "required input %d is missing", i);
    return op->parse ? op->parse(n, d) : CRUN_OK;
}

crun_status op_parse_node(Node *n, Diag *d) { return parse_node(n, 0, d); }

/* The passes give a MatMul its fused bias as a third input (its kernels read it when
 * there); nothing else goes past the op's own counts. */
crun_status op_parse_optimised_node(Node *n, Diag *d)
{
    return parse_node(n, n->op->flags & OPF_ACT_EPILOGUE ? 1 : 0, d);
}

/* ---- attributes ---- */

static const Attr *typed_attr(const Node *n, const char *name, AttrType type, crun_status *st, Diag *d)
{
    const Attr *a = node_attr(n, name);
    *st = CRUN_OK;
    if (a && a->type != type) {
        *st = node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute '%s' has type %d, expected %d", name, (int)a->type,
                        (int)type);
        return NULL;
    }
    return a;
}

crun_status attr_get_int(const Node *n, const char *name, int64_t def, int64_t *out, Diag *d)
{
    crun_status st;
    const Attr *a = typed_attr(n, name, ATTR_INT, &st, d);
    *out = a ? a->i : def;
    return st;
}

crun_status attr_get_float(const Node *n, const char *name, float def, float *out, Diag *d)
{
    crun_status st;
    const Attr *a = node_attr(n, name);
    /* Some exporters write integer-valued float attributes as ints; accept both. */
    if (a && a->type == ATTR_INT) {
        *out = (float)a->i;
        return CRUN_OK;
    }
    a = typed_attr(n, name, ATTR_FLOAT, &st, d);
    *out = a ? a->f : def;
    return st;
}

crun_status attr_get_ints(const Node *n, const char *name, int64_t *out, int max, int *count, Diag *d)
{
    crun_status st;
    const Attr *a = typed_attr(n, name, ATTR_INTS, &st, d);
    *count = 0;
    if (!a)
        return st;
    if (a->n > max)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute '%s' has %d values, at most %d allowed", name, a->n,
                         max);
    memcpy(out, a->ints, (size_t)a->n * sizeof *out);
    *count = a->n;
    return CRUN_OK;
}

crun_status attr_get_floats(const Node *n, const char *name, float *out, int max, int *count, Diag *d)
{
    crun_status st;
    const Attr *a = typed_attr(n, name, ATTR_FLOATS, &st, d);
    *count = 0;
    if (!a)
        return st;
    if (a->n > max)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute '%s' has %d values, at most %d allowed", name, a->n,
                         max);
    memcpy(out, a->floats, (size_t)a->n * sizeof *out);
    *count = a->n;
    return CRUN_OK;
}

crun_status attr_get_string(const Node *n, const char *name, const char *def, const char **out, Diag *d)
{
    crun_status st;
    const Attr *a = typed_attr(n, name, ATTR_STRING, &st, d);
    *out = a ? a->s : def;
    return st;
}

void *params_alloc(Node *n, size_t size, Diag *d)
{
    free(n->params);
    n->params = calloc(1, size);
    if (!n->params)
        node_fail(n, d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for attributes");
    return n->params;
}

/* ---- shapes ---- */

void out_set(Tensor *o, crun_dtype dtype, int rank, const int64_t *dims)
{
    o->dtype = dtype;
    o->rank = rank;
    for (int i = 0; i < rank; i++)
        o->dims[i] = dims[i];
}

bool broadcast_shape(const int64_t *a, int ra, const int64_t *b, int rb, int64_t *out, int *rout)
{
    int r = CRUN_MAX(ra, rb);
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        if (da != db && da != 1 && db != 1)
            return false;
        out[i] = da == 1 ? db : da;
    }
    *rout = r;
    return true;
}

int64_t tensor_get_int(const Tensor *t, int64_t i)
{
    switch (t->dtype) {
    case CRUN_DTYPE_INT64: return ((const int64_t *)t->data)[i];
    case CRUN_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    case CRUN_DTYPE_INT16: return ((const int16_t *)t->data)[i];
    case CRUN_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case CRUN_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    case CRUN_DTYPE_UINT16: return ((const uint16_t *)t->data)[i];
    case CRUN_DTYPE_UINT32: return ((const uint32_t *)t->data)[i];
    case CRUN_DTYPE_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case CRUN_DTYPE_BOOL: return ((const uint8_t *)t->data)[i] != 0;
    default: return double_to_i64_sat(tensor_get_double(t, i));
    }
}

void tensor_set_double(Tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case CRUN_DTYPE_FLOAT: ((float *)t->data)[i] = (float)v; return;
    case CRUN_DTYPE_DOUBLE: ((double *)t->data)[i] = v; return;
    case CRUN_DTYPE_FLOAT16: ((uint16_t *)t->data)[i] = f32_to_fp16((float)v); return;
    case CRUN_DTYPE_BFLOAT16: ((uint16_t *)t->data)[i] = f32_to_bf16((float)v); return;
    case CRUN_DTYPE_BOOL: ((uint8_t *)t->data)[i] = v != 0; return;
    case CRUN_DTYPE_UINT64: ((uint64_t *)t->data)[i] = v <= 0 || v != v ? 0 : v >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v; return;
    default: tensor_set_int(t, i, double_to_i64_sat(v)); return;
    }
}

void tensor_set_int(Tensor *t, int64_t i, int64_t v)
{
    switch (t->dtype) {
    case CRUN_DTYPE_INT64: ((int64_t *)t->data)[i] = v; return;
    case CRUN_DTYPE_INT32: ((int32_t *)t->data)[i] = (int32_t)v; return;
    case CRUN_DTYPE_INT16: ((int16_t *)t->data)[i] = (int16_t)v; return;
    case CRUN_DTYPE_INT8: ((int8_t *)t->data)[i] = (int8_t)v; return;
    case CRUN_DTYPE_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; return;
    case CRUN_DTYPE_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; return;
    case CRUN_DTYPE_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; return;
    case CRUN_DTYPE_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)v; return;
    case CRUN_DTYPE_BOOL: ((uint8_t *)t->data)[i] = v != 0; return;
    default: tensor_set_double(t, i, (double)v); return;
    }
}

double tensor_get_double(const Tensor *t, int64_t i)
{
    switch (t->dtype) {
    case CRUN_DTYPE_FLOAT: return ((const float *)t->data)[i];
    case CRUN_DTYPE_DOUBLE: return ((const double *)t->data)[i];
    case CRUN_DTYPE_FLOAT16: return fp16_to_f32(((const uint16_t *)t->data)[i]);
    case CRUN_DTYPE_BFLOAT16: return bf16_to_f32(((const uint16_t *)t->data)[i]);
    default: return (double)tensor_get_int(t, i);
    }
}

const unsigned char packed_away[64];

const void *prep_shared_ctx(PrepCtx *c, const char *tag, size_t bytes, void (*fill)(const void *ctx, void *dst),
                            const void *ctx)
{
    if (!c->packs)
        return NULL;
    for (int k = 0; k < c->n_in; k++)
        if (c->in[k] && data_packed_away(c->in[k]->data)) {
            /* Only the pack made by crun compile exists: another one cannot be made. */
            const void *p = packcache_find(c->packs, c->node, tag, bytes);
            if (!p)
                node_fail(c->node, c->d, CRUN_ERR_UNSUPPORTED,
                          "compiled model has its weights packed for another kernel (%s): run it at the ISA and "
                          "on the build it was compiled for, or compile it again",
                          c->node->kernel ? c->node->kernel->name : "?");
            return p;
        }
    return packcache_get(c->packs, c->node, tag, bytes, fill, ctx);
}

const void *prep_shared(PrepCtx *c, const char *tag, size_t bytes, void (*fill)(const void *c, void *dst))
{
    return prep_shared_ctx(c, tag, bytes, fill, c);
}

void prep_packed_away(PrepCtx *c, const Tensor *in)
{
    for (int k = 0; c->packs && k < c->n_in && k < 32; k++)
        if (c->in[k] == in)
            c->packed_inputs |= 1u << k;
}
