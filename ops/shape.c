/* shape.c - ops that only change how a tensor's bytes are viewed: Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity, and Shape itself.
 *
 * The planner makes a view op's output share its input's memory, so these kernels
 * usually do nothing; they copy only when the planner could not alias (e.g. a graph
 * input that is also reshaped into a graph output). */
#include <string.h>

#include "ops/tensor_common.h"
#include "runtime/sequence.h"

typedef struct AxesParams {
    int n_axes;
    int64_t axes[CRUN_MAX_RANK];
    int64_t axis;      /* Flatten */
    int64_t allowzero; /* Reshape */
    int64_t shape[CRUN_MAX_RANK]; /* Reshape before opset 5 */
    int shape_rank;
    int64_t start, end; /* Shape (opset 15) */
    bool has_end;
} AxesParams;

static crun_status view_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    if (x->dtype == CRUN_DTYPE_STRING) /* held outside the arena, never aliased: deep copy */
        return elems_copy(y->data, x->data, tensor_numel(x), x->dtype) == CRUN_OK
                   ? CRUN_OK
                   : node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    size_t bytes = tensor_bytes(x);
    if (bytes && y->data != x->data)
        memmove(y->data, x->data, bytes);
    return CRUN_OK;
}

static const KernelVariant view_kernels[] = {{"view", ISA_SCALAR, NULL, NULL, view_run, NULL}, {0}};

/* ---- Identity ---- */

static crun_status identity_infer(InferCtx *c)
{
    out_set(c->out[0], c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims);
    /* Sequences and optionals pass through too (kept outside the arena, so copied). */
    c->out[0]->kind = c->in[0]->kind;
    c->out[0]->none = c->in[0]->none;
    return CRUN_OK;
}

static crun_status identity_run(KernelCtx *k)
{
    if (k->in[0]->kind == VALUE_TENSOR && !k->in[0]->none)
        return view_run(k);
    return value_copy(k->out[0], k->in[0]) == CRUN_OK ? CRUN_OK
                                                       : node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
}

static const KernelVariant identity_kernels[] = {{"view", ISA_SCALAR, NULL, NULL, identity_run, NULL}, {0}};
const OpDesc op_Identity = {"", "Identity", 1, 1, 1, 1, OPF_VIEW | OPF_ANY_VALUE, NULL, identity_infer, NULL,
                            identity_kernels};

/* ---- Shape ---- */

static crun_status parse_shape(Node *n, Diag *d)
{
    AxesParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->has_end = node_attr(n, "end") != NULL;
    crun_status st = attr_get_int(n, "start", 0, &p->start, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "end", 0, &p->end, d);
    return st;
}

static void shape_range(const AxesParams *p, int rank, int *s, int *e)
{
    int64_t start = p->start, end = p->has_end ? p->end : rank;
    if (start < 0)
        start += rank;
    if (end < 0)
        end += rank;
    *s = (int)CRUN_MAX(0, CRUN_MIN(start, rank));
    *e = (int)CRUN_MAX(*s, CRUN_MIN(end, rank));
}

static crun_status shape_infer(InferCtx *c)
{
    int s, e;
    shape_range(c->params, c->in[0]->rank, &s, &e);
    int64_t n = e - s;
    out_set(c->out[0], CRUN_DTYPE_INT64, 1, &n);
    return CRUN_OK;
}

static crun_status shape_run(KernelCtx *k)
{
    int s, e;
    shape_range(k->params, k->in[0]->rank, &s, &e);
    int64_t *o = k->out[0]->data;
    for (int i = s; i < e; i++)
        o[i - s] = k->in[0]->dims[i];
    return CRUN_OK;
}

static const KernelVariant shape_kernels[] = {{"shape", ISA_SCALAR, NULL, NULL, shape_run, NULL}, {0}};
const OpDesc op_Shape = {"", "Shape", 1, 1, 1, 1, OPF_SHAPE_ONLY, parse_shape, shape_infer, NULL, shape_kernels};

/* ---- Reshape ---- */

static crun_status parse_reshape(Node *n, Diag *d)
{
    AxesParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "allowzero", 0, &p->allowzero, d);
    if (st == CRUN_OK && n->opset < 5) {
        st = attr_get_ints(n, "shape", p->shape, CRUN_MAX_RANK, &p->shape_rank, d);
        if (st == CRUN_OK && !node_attr(n, "shape"))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'shape' is required before opset 5");
    }
    return st;
}

static crun_status reshape_infer(InferCtx *c)
{
    const AxesParams *p = c->params;
    const Tensor *x = c->in[0];
    int64_t shape[CRUN_MAX_RANK];
    int rank;
    if (c->node->opset < 5) {
        rank = p->shape_rank;
        memcpy(shape, p->shape, sizeof shape);
    } else {
        NODE_CHECK(c, c->n_in > 1 && c->in[1], "input 'shape' is required");
        const Tensor *s = c->in[1];
        NODE_CHECK(c, s->dtype == CRUN_DTYPE_INT64 && s->rank == 1, "'shape' must be a 1-D int64 tensor");
        NODE_CHECK(c, s->dims[0] <= CRUN_MAX_RANK, "'shape' has %lld entries, at most %d allowed",
                   (long long)s->dims[0], CRUN_MAX_RANK);
        if (!s->data) {
            c->needs_data = true;
            return CRUN_OK;
        }
        rank = (int)s->dims[0];
        memcpy(shape, s->data, (size_t)rank * sizeof(int64_t));
    }
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] == 0 && !p->allowzero) {
            NODE_CHECK(c, i < x->rank, "shape entry %d is 0 (copy) but the input has rank %d", i, x->rank);
            shape[i] = x->dims[i];
        }
        if (shape[i] == -1) {
            NODE_CHECK(c, infer_at < 0, "shape has more than one -1");
            infer_at = i;
            continue;
        }
        NODE_CHECK(c, shape[i] >= 0, "shape entry %d is %lld", i, (long long)shape[i]);
        NODE_CHECK(c, shape[i] == 0 || known <= CRUN_MAX_NUMEL / shape[i], "shape is too large");
        known *= shape[i];
    }
    int64_t numel = tensor_numel(x);
    char sx[96], ss[96];
    if (infer_at >= 0) {
        NODE_CHECK(c, known != 0 && numel % known == 0, "cannot reshape %s into %s",
                   shape_str(x->dims, x->rank, sx, sizeof sx), shape_str(shape, rank, ss, sizeof ss));
        shape[infer_at] = numel / known;
    } else {
        NODE_CHECK(c, known == numel, "cannot reshape %s (%lld elements) into %s",
                   shape_str(x->dims, x->rank, sx, sizeof sx), (long long)numel, shape_str(shape, rank, ss, sizeof ss));
    }
    out_set(c->out[0], x->dtype, rank, shape);
    return CRUN_OK;
}

const OpDesc op_Reshape = {"", "Reshape", 1, 2, 1, 1, OPF_VIEW, parse_reshape, reshape_infer, NULL, view_kernels};

/* ---- Flatten ---- */

static crun_status parse_flatten(Node *n, Diag *d)
{
    AxesParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_int(n, "axis", 1, &p->axis, d) : d->status;
}

static crun_status flatten_infer(InferCtx *c)
{
    const AxesParams *p = c->params;
    const Tensor *x = c->in[0];
    int64_t axis = p->axis < 0 ? p->axis + x->rank : p->axis;
    NODE_CHECK(c, axis >= 0 && axis <= x->rank, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    int64_t dims[2] = {shape_numel(x->dims, (int)axis), shape_numel(x->dims + axis, x->rank - (int)axis)};
    out_set(c->out[0], x->dtype, 2, dims);
    return CRUN_OK;
}

const OpDesc op_Flatten = {"", "Flatten", 1, 1, 1, 1, OPF_VIEW, parse_flatten, flatten_infer, NULL, view_kernels};

/* ---- Squeeze / Unsqueeze: axes are an attribute before opset 13, an input after ---- */

static crun_status parse_axes(Node *n, Diag *d)
{
    AxesParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->n_axes = -1;
    if (n->opset < 13 && node_attr(n, "axes"))
        return attr_get_ints(n, "axes", p->axes, CRUN_MAX_RANK, &p->n_axes, d);
    return CRUN_OK;
}

/* Gets the axes (attribute or input 1). *n = -1 when none were given; sets
 * c->needs_data when the axes input is not known yet. */
static crun_status get_axes(InferCtx *c, int64_t *axes, int *n)
{
    const AxesParams *p = c->params;
    *n = p->n_axes;
    if (*n >= 0) {
        memcpy(axes, p->axes, sizeof p->axes);
        return CRUN_OK;
    }
    if (c->node->opset < 13 || c->n_in < 2 || !c->in[1])
        return CRUN_OK;
    const Tensor *a = c->in[1];
    NODE_CHECK(c, a->dtype == CRUN_DTYPE_INT64 && a->rank <= 1, "'axes' must be a 1-D int64 tensor");
    NODE_CHECK(c, tensor_numel(a) <= CRUN_MAX_RANK, "too many axes");
    if (!a->data) {
        c->needs_data = true;
        return CRUN_OK;
    }
    *n = (int)tensor_numel(a);
    memcpy(axes, a->data, (size_t)*n * sizeof(int64_t));
    return CRUN_OK;
}

static crun_status squeeze_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    int64_t axes[CRUN_MAX_RANK];
    int n;
    crun_status st = get_axes(c, axes, &n);
    if (st != CRUN_OK || c->needs_data)
        return st;
    bool drop[CRUN_MAX_RANK] = {false};
    if (n < 0) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = x->dims[i] == 1;
    }
    for (int i = 0; i < n; i++) {
        int a = axis_normalize(axes[i], x->rank);
        NODE_CHECK(c, a >= 0, "axis %lld is out of range for rank %d", (long long)axes[i], x->rank);
        NODE_CHECK(c, x->dims[a] == 1, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
        drop[a] = true;
    }
    int64_t dims[CRUN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            dims[r++] = x->dims[i];
    out_set(c->out[0], x->dtype, r, dims);
    return CRUN_OK;
}

static crun_status unsqueeze_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    int64_t axes[CRUN_MAX_RANK];
    int n;
    crun_status st = get_axes(c, axes, &n);
    if (st != CRUN_OK || c->needs_data)
        return st;
    NODE_CHECK(c, n >= 0, "'axes' is required");
    int r = x->rank + n;
    NODE_CHECK(c, r <= CRUN_MAX_RANK, "result rank %d exceeds %d", r, CRUN_MAX_RANK);
    bool ins[CRUN_MAX_RANK] = {false};
    for (int i = 0; i < n; i++) {
        int a = axis_normalize(axes[i], r);
        NODE_CHECK(c, a >= 0, "axis %lld is out of range for rank %d", (long long)axes[i], r);
        NODE_CHECK(c, !ins[a], "axis %d is repeated", a);
        ins[a] = true;
    }
    int64_t dims[CRUN_MAX_RANK];
    for (int i = 0, k = 0; i < r; i++)
        dims[i] = ins[i] ? 1 : x->dims[k++];
    out_set(c->out[0], x->dtype, r, dims);
    return CRUN_OK;
}

const OpDesc op_Squeeze = {"", "Squeeze", 1, 2, 1, 1, OPF_VIEW, parse_axes, squeeze_infer, NULL, view_kernels};
const OpDesc op_Unsqueeze = {"", "Unsqueeze", 1, 2, 1, 1, OPF_VIEW, parse_axes, unsqueeze_infer, NULL, view_kernels};
