/* tensor_make.c - ops that make a tensor from a few values: Range, ConstantOfShape,
 * OneHot, Size. Except for Size, their output shape is an input's value, so infer asks
 * for the data (needs_data) when that input is not a constant. */
#include <math.h>
#include <string.h>

#include "ops/tensor_common.h"

/* ==== Range: start + i * delta for i < max(ceil((limit - start) / delta), 0) ==== */

static bool range_dtype_ok(crun_dtype t)
{
    return t == CRUN_DTYPE_FLOAT || t == CRUN_DTYPE_DOUBLE || t == CRUN_DTYPE_INT16 || t == CRUN_DTYPE_INT32 ||
           t == CRUN_DTYPE_INT64;
}

/* Element count, or -1 when it exceeds CRUN_MAX_NUMEL. Integer ranges are counted
 * exactly (the difference of two int64 fits an uint64). */
static int64_t range_count(const Tensor *const *in)
{
    if (dtype_is_float(in[0]->dtype)) {
        double s = tensor_get_double(in[0], 0), l = tensor_get_double(in[1], 0), dl = tensor_get_double(in[2], 0);
        double n = ceil((l - s) / dl);
        if (!(n > 0))
            return 0;
        return n > (double)CRUN_MAX_NUMEL ? -1 : (int64_t)n;
    }
    int64_t s = tensor_get_int(in[0], 0), l = tensor_get_int(in[1], 0), dl = tensor_get_int(in[2], 0);
    if ((dl > 0 && l <= s) || (dl < 0 && l >= s))
        return 0;
    uint64_t span = dl > 0 ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
    uint64_t step = dl > 0 ? (uint64_t)dl : 0 - (uint64_t)dl;
    uint64_t n = span / step + (span % step != 0);
    return n > (uint64_t)CRUN_MAX_NUMEL ? -1 : (int64_t)n;
}

static crun_status range_infer(InferCtx *c)
{
    crun_dtype t = c->in[0]->dtype;
    NODE_CHECK(c, range_dtype_ok(t), "type %s is not supported", dtype_name(t));
    for (int i = 0; i < 3; i++) {
        NODE_CHECK(c, c->in[i]->dtype == t, "inputs must all have type %s", dtype_name(t));
        NODE_CHECK(c, tensor_numel(c->in[i]) == 1, "input %d must be a scalar", i);
        if (!c->in[i]->data)
            c->needs_data = true;
    }
    if (c->needs_data)
        return CRUN_OK;
    DATA_CHECK(c, tensor_get_double(c->in[2], 0) != 0, "delta is 0");
    int64_t n = range_count(c->in);
    DATA_CHECK(c, n >= 0, "the range has too many elements");
    out_set(c->out[0], t, 1, &n);
    return CRUN_OK;
}

static crun_status range_run(KernelCtx *k)
{
    Tensor *y = k->out[0];
    int64_t n = y->dims[0];
    switch (y->dtype) {
    case CRUN_DTYPE_FLOAT:
    case CRUN_DTYPE_DOUBLE: {
        double s = tensor_get_double(k->in[0], 0), dl = tensor_get_double(k->in[2], 0);
        for (int64_t i = 0; i < n; i++)
            tensor_set_double(y, i, s + (double)i * dl);
        break;
    }
    default: {
        /* Integers wrap like the type they are stored in. */
        uint64_t s = (uint64_t)tensor_get_int(k->in[0], 0), dl = (uint64_t)tensor_get_int(k->in[2], 0);
        for (int64_t i = 0; i < n; i++)
            tensor_set_int(y, i, (int64_t)(s + (uint64_t)i * dl));
    }
    }
    return CRUN_OK;
}

static const KernelVariant range_kernels[] = {{"range", ISA_SCALAR, NULL, NULL, range_run, NULL}, {0}};
const OpDesc op_Range = {"", "Range", 3, 3, 1, 1, 0, NULL, range_infer, NULL, range_kernels};

/* ==== ConstantOfShape ==== */

typedef struct FillParams {
    crun_dtype dtype;
    unsigned char value[16]; /* one element of dtype */
} FillParams;

static crun_status parse_constant_of_shape(Node *n, Diag *d)
{
    FillParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->dtype = CRUN_DTYPE_FLOAT; /* default: float 0 */
    const Attr *a = node_attr(n, "value");
    if (!a)
        return CRUN_OK;
    if (a->type != ATTR_TENSOR || !a->tensors)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'value' must be a tensor");
    const Tensor *t = &a->tensors[0].t;
    if (tensor_numel(t) != 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'value' must hold one element");
    if (t->dtype == CRUN_DTYPE_STRING || dtype_size(t->dtype) > sizeof p->value)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "value type %s is not supported", dtype_name(t->dtype));
    p->dtype = t->dtype;
    memcpy(p->value, t->data, dtype_size(t->dtype));
    return CRUN_OK;
}

static crun_status constant_of_shape_infer(InferCtx *c)
{
    const FillParams *p = c->params;
    int64_t dims[CRUN_MAX_RANK];
    int n;
    crun_status st = input_ints(c->node, c->d, c->in[0], "input", dims, CRUN_MAX_RANK, &n, &c->needs_data);
    if (st != CRUN_OK || c->needs_data)
        return st;
    for (int i = 0; i < n; i++)
        DATA_CHECK(c, dims[i] >= 0, "shape entry %d is %lld", i, (long long)dims[i]);
    DATA_CHECK(c, shape_numel(dims, n) >= 0, "shape is too large");
    out_set(c->out[0], p->dtype, n, dims);
    return CRUN_OK;
}

static crun_status constant_of_shape_run(KernelCtx *k)
{
    const FillParams *p = k->params;
    return elems_fill(k->out[0]->data, p->value, tensor_numel(k->out[0]), p->dtype);
}

static const KernelVariant constant_of_shape_kernels[] = {
    {"constant_of_shape", ISA_SCALAR, NULL, NULL, constant_of_shape_run, NULL}, {0}};
const OpDesc op_ConstantOfShape = {"", "ConstantOfShape", 1, 1, 1, 1, 0, parse_constant_of_shape,
                                   constant_of_shape_infer, NULL, constant_of_shape_kernels};

/* ==== OneHot: values[1] where the depth index equals indices (negative counts from the
 * end), values[0] elsewhere; indices outside [-depth, depth) give a row of values[0] ==== */

typedef struct OneHotParams {
    int64_t axis;
} OneHotParams;

static crun_status parse_onehot(Node *n, Diag *d)
{
    OneHotParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_int(n, "axis", -1, &p->axis, d) : d->status;
}

static bool numeric(crun_dtype t) { return dtype_is_int(t) || dtype_is_float(t); }

static crun_status onehot_infer(InferCtx *c)
{
    const OneHotParams *p = c->params;
    const Tensor *ind = c->in[0], *depth = c->in[1], *vals = c->in[2];
    NODE_CHECK(c, numeric(ind->dtype), "indices type %s is not supported", dtype_name(ind->dtype));
    NODE_CHECK(c, numeric(depth->dtype) && tensor_numel(depth) == 1, "depth must be a numeric scalar");
    NODE_CHECK(c, vals->rank == 1 && vals->dims[0] == 2, "values must be 1-D with 2 elements");
    int r = ind->rank + 1;
    NODE_CHECK(c, r <= CRUN_MAX_RANK, "output rank %d exceeds %d", r, CRUN_MAX_RANK);
    int axis = axis_normalize(p->axis, r);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for output rank %d", (long long)p->axis, r);
    if (!depth->data) {
        c->needs_data = true;
        return CRUN_OK;
    }
    int64_t dep = tensor_get_int(depth, 0);
    DATA_CHECK(c, dep >= 1 && dep <= CRUN_MAX_NUMEL, "depth %lld is out of range", (long long)dep);
    int64_t dims[CRUN_MAX_RANK];
    for (int i = 0, k = 0; i < r; i++)
        dims[i] = i == axis ? dep : ind->dims[k++];
    DATA_CHECK(c, shape_numel(dims, r) >= 0, "output is too large");
    out_set(c->out[0], vals->dtype, r, dims);
    return CRUN_OK;
}

static crun_status onehot_run(KernelCtx *k)
{
    const OneHotParams *p = k->params;
    const Tensor *ind = k->in[0], *vals = k->in[2];
    Tensor *y = k->out[0];
    int axis = axis_normalize(p->axis, y->rank);
    int64_t dep = y->dims[axis], outer = shape_numel(y->dims, axis);
    int64_t inner = shape_numel(y->dims + axis + 1, y->rank - axis - 1);
    size_t es = dtype_size(y->dtype);
    const char *off = vals->data, *on = off + es;
    crun_status st = elems_fill(y->data, off, tensor_numel(y), y->dtype);
    for (int64_t o = 0; o < outer && st == CRUN_OK; o++)
        for (int64_t i = 0; i < inner && st == CRUN_OK; i++) {
            int64_t v = tensor_get_int(ind, o * inner + i); /* floats truncate */
            if (v < 0)
                v += dep;
            if (v >= 0 && v < dep)
                st = elems_copy((char *)y->data + (size_t)((o * dep + v) * inner + i) * es, on, 1, y->dtype);
        }
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static const KernelVariant onehot_kernels[] = {{"onehot", ISA_SCALAR, NULL, NULL, onehot_run, NULL}, {0}};
const OpDesc op_OneHot = {"", "OneHot", 3, 3, 1, 1, 0, parse_onehot, onehot_infer, NULL, onehot_kernels};

/* ==== Size ==== */

static crun_status size_infer(InferCtx *c)
{
    out_set(c->out[0], CRUN_DTYPE_INT64, 0, NULL);
    return CRUN_OK;
}

static crun_status size_run(KernelCtx *k)
{
    *(int64_t *)k->out[0]->data = tensor_numel(k->in[0]);
    return CRUN_OK;
}

static const KernelVariant size_kernels[] = {{"size", ISA_SCALAR, NULL, NULL, size_run, NULL}, {0}};
const OpDesc op_Size = {"", "Size", 1, 1, 1, 1, OPF_SHAPE_ONLY, NULL, size_infer, NULL, size_kernels};
