/* layout.c - ops that move elements around: Concat, Transpose, Slice, Gather. All work
 * on raw element bytes, so every dtype is supported (strings are deep-copied through
 * tensor_common.h: a STRING tensor owns its strings). */
#include <string.h>

#include "ops/tensor_common.h"

typedef struct LayoutParams {
    int64_t axis;
    int n_perm;
    int64_t perm[CRUN_MAX_RANK];
    /* Slice before opset 10 */
    int n_starts, n_ends, n_axes;
    int64_t starts[CRUN_MAX_RANK], ends[CRUN_MAX_RANK], axes[CRUN_MAX_RANK];
} LayoutParams;

static crun_status parse_axis(Node *n, Diag *d, int64_t def, bool required)
{
    LayoutParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    if (required && !node_attr(n, "axis"))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'axis' is required");
    return attr_get_int(n, "axis", def, &p->axis, d);
}

/* ---- Concat ---- */

/* Concat-1 defaults axis to 1; from opset 4 it is required. */
static crun_status parse_concat(Node *n, Diag *d) { return parse_axis(n, d, n->opset < 4 ? 1 : 0, n->opset >= 4); }

static crun_status concat_infer(InferCtx *c)
{
    const LayoutParams *p = c->params;
    const Tensor *x0 = c->in[0];
    int axis = axis_normalize(p->axis, x0->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x0->rank);
    int64_t dims[CRUN_MAX_RANK];
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < c->n_in; i++) {
        const Tensor *x = c->in[i];
        NODE_CHECK(c, x, "input %d is missing", i);
        NODE_CHECK(c, x->dtype == x0->dtype, "input %d has type %s, input 0 has %s", i, dtype_name(x->dtype),
                   dtype_name(x0->dtype));
        NODE_CHECK(c, x->rank == x0->rank, "input %d has rank %d, input 0 has %d", i, x->rank, x0->rank);
        for (int k = 0; k < x->rank; k++)
            NODE_CHECK(c, k == axis || x->dims[k] == x0->dims[k], "input %d has dim %d = %lld, input 0 has %lld", i,
                       k, (long long)x->dims[k], (long long)x0->dims[k]);
        dims[axis] += x->dims[axis];
    }
    out_set(c->out[0], x0->dtype, x0->rank, dims);
    return CRUN_OK;
}

static crun_status concat_run(KernelCtx *k)
{
    const LayoutParams *p = k->params;
    Tensor *o = k->out[0];
    int axis = axis_normalize(p->axis, o->rank);
    size_t es = dtype_size(o->dtype);
    int64_t outer = shape_numel(o->dims, axis);
    size_t out_row = (size_t)shape_numel(o->dims + axis, o->rank - axis) * es;
    size_t col = 0;
    for (int i = 0; i < k->n_in; i++) {
        const Tensor *x = k->in[i];
        int64_t n = shape_numel(x->dims + axis, x->rank - axis);
        size_t row = (size_t)n * es;
        const char *src = x->data;
        char *dst = (char *)o->data + col;
        if (src == dst) { /* written in place by its producer (OPF_JOINS_INPUTS) */
            col += row;
            continue;
        }
        for (int64_t r = 0; r < outer; r++)
            if (elems_copy(dst + (size_t)r * out_row, src + (size_t)r * row, n, o->dtype) != CRUN_OK)
                return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        col += row;
    }
    return CRUN_OK;
}

static const KernelVariant concat_kernels[] = {{"concat", ISA_SCALAR, NULL, NULL, concat_run, NULL}, {0}};
const OpDesc op_Concat = {"", "Concat", 1, -1, 1, 1, OPF_JOINS_INPUTS, parse_concat, concat_infer, NULL,
                          concat_kernels};

/* ---- Transpose ---- */

static crun_status parse_transpose(Node *n, Diag *d)
{
    LayoutParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->n_perm = -1;
    if (!node_attr(n, "perm"))
        return CRUN_OK;
    return attr_get_ints(n, "perm", p->perm, CRUN_MAX_RANK, &p->n_perm, d);
}

static void get_perm(const LayoutParams *p, int rank, int64_t *perm)
{
    for (int i = 0; i < rank; i++)
        perm[i] = p->n_perm < 0 ? rank - 1 - i : p->perm[i];
}

static crun_status transpose_infer(InferCtx *c)
{
    const LayoutParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, p->n_perm < 0 || p->n_perm == x->rank, "perm has %d entries for rank %d", p->n_perm, x->rank);
    int64_t perm[CRUN_MAX_RANK], dims[CRUN_MAX_RANK];
    bool seen[CRUN_MAX_RANK] = {false};
    get_perm(p, x->rank, perm);
    for (int i = 0; i < x->rank; i++) {
        NODE_CHECK(c, perm[i] >= 0 && perm[i] < x->rank && !seen[perm[i]], "perm is not a permutation of 0..%d",
                   x->rank - 1);
        seen[perm[i]] = true;
        dims[i] = x->dims[perm[i]];
    }
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

static crun_status transpose_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    Tensor *o = k->out[0];
    if (tensor_numel(o) == 0)
        return CRUN_OK;
    int64_t perm[CRUN_MAX_RANK], xs[CRUN_MAX_RANK];
    get_perm(k->params, x->rank, perm);
    shape_strides(x->dims, x->rank, xs);
    /* The output is the input read with permuted strides; view_simplify drops unit dims
     * and merges output dims that are also adjacent in the input. */
    StridedView v = {.rank = o->rank};
    for (int i = 0; i < o->rank; i++) {
        v.dims[i] = o->dims[i];
        v.stride[i] = xs[perm[i]];
    }
    view_simplify(&v);
    crun_status st = view_copy(&v, x->data, o->data, x->dtype, k->pool);
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static const KernelVariant transpose_kernels[] = {{"transpose_ref", ISA_SCALAR, NULL, NULL, transpose_run, NULL},
                                                  {0}};
const OpDesc op_Transpose = {"", "Transpose", 1, 1, 1, 1, 0, parse_transpose, transpose_infer, NULL,
                             transpose_kernels};

/* ---- Slice: attributes before opset 10, inputs (starts, ends, axes, steps) after ---- */

static crun_status parse_slice(Node *n, Diag *d)
{
    LayoutParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    if (n->opset >= 10)
        return CRUN_OK;
    crun_status st = attr_get_ints(n, "starts", p->starts, CRUN_MAX_RANK, &p->n_starts, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "ends", p->ends, CRUN_MAX_RANK, &p->n_ends, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "axes", p->axes, CRUN_MAX_RANK, &p->n_axes, d);
    if (st == CRUN_OK && p->n_starts != p->n_ends)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'starts' and 'ends' differ in length");
    return st;
}

typedef struct SliceSpec {
    int64_t start[CRUN_MAX_RANK], step[CRUN_MAX_RANK], dims[CRUN_MAX_RANK];
} SliceSpec;

static crun_status read_list(InferCtx *c, int idx, int64_t *out, int *n, bool *known)
{
    const Tensor *t = c->n_in > idx ? c->in[idx] : NULL;
    *n = -1;
    if (!t)
        return CRUN_OK;
    NODE_CHECK(c, (t->dtype == CRUN_DTYPE_INT64 || t->dtype == CRUN_DTYPE_INT32) && t->rank == 1,
               "input %d must be a 1-D int32 or int64 tensor", idx);
    NODE_CHECK(c, t->dims[0] <= CRUN_MAX_RANK, "input %d has too many entries", idx);
    if (!t->data) {
        *known = false;
        return CRUN_OK;
    }
    *n = (int)t->dims[0];
    for (int i = 0; i < *n; i++)
        out[i] = tensor_get_int(t, i);
    return CRUN_OK;
}

/* Start and length of one sliced axis, clamped as the ONNX Slice spec describes. */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *s_out, int64_t *len)
{
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    /* len = ceil(span / |step|), written so that no step value can overflow. */
    if (step > 0) {
        start = CRUN_MAX((int64_t)0, CRUN_MIN(start, dim));
        end = CRUN_MAX((int64_t)0, CRUN_MIN(end, dim));
        *len = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        int64_t mag = step == INT64_MIN ? INT64_MAX : -step;
        start = CRUN_MAX((int64_t)-1, CRUN_MIN(start, dim - 1));
        end = CRUN_MAX((int64_t)-1, CRUN_MIN(end, dim - 1));
        *len = start > end ? (start - end - 1) / mag + 1 : 0;
    }
    *s_out = start;
}

static crun_status slice_spec(InferCtx *c, SliceSpec *sp)
{
    const LayoutParams *p = c->params;
    const Tensor *x = c->in[0];
    int64_t starts[CRUN_MAX_RANK], ends[CRUN_MAX_RANK], axes[CRUN_MAX_RANK], steps[CRUN_MAX_RANK];
    int ns, ne, na, nst;
    bool known = true;
    if (c->node->opset < 10) {
        ns = p->n_starts, ne = p->n_ends, na = p->n_axes ? p->n_axes : -1, nst = -1;
        memcpy(starts, p->starts, sizeof starts);
        memcpy(ends, p->ends, sizeof ends);
        memcpy(axes, p->axes, sizeof axes);
    } else {
        crun_status st = read_list(c, 1, starts, &ns, &known);
        if (st == CRUN_OK)
            st = read_list(c, 2, ends, &ne, &known);
        if (st == CRUN_OK)
            st = read_list(c, 3, axes, &na, &known);
        if (st == CRUN_OK)
            st = read_list(c, 4, steps, &nst, &known);
        if (st != CRUN_OK)
            return st;
        if (!known) {
            c->needs_data = true;
            return CRUN_OK;
        }
    }
    NODE_CHECK(c, ns == ne, "starts has %d entries, ends has %d", ns, ne);
    NODE_CHECK(c, na < 0 || na == ns, "axes has %d entries, starts has %d", na, ns);
    NODE_CHECK(c, nst < 0 || nst == ns, "steps has %d entries, starts has %d", nst, ns);
    bool seen[CRUN_MAX_RANK] = {false};
    for (int i = 0; i < x->rank; i++) {
        sp->start[i] = 0;
        sp->step[i] = 1;
        sp->dims[i] = x->dims[i];
    }
    for (int i = 0; i < ns; i++) {
        int a = axis_normalize(na < 0 ? i : axes[i], x->rank);
        NODE_CHECK(c, a >= 0, "axis %lld is out of range for rank %d", (long long)(na < 0 ? i : axes[i]), x->rank);
        NODE_CHECK(c, !seen[a], "axis %d is repeated", a);
        seen[a] = true;
        int64_t step = nst < 0 ? 1 : steps[i];
        NODE_CHECK(c, step != 0, "step of axis %d is 0", a);
        sp->step[a] = step;
        slice_axis(x->dims[a], starts[i], ends[i], step, &sp->start[a], &sp->dims[a]);
    }
    return CRUN_OK;
}

static crun_status slice_infer(InferCtx *c)
{
    SliceSpec sp;
    crun_status st = slice_spec(c, &sp);
    if (st == CRUN_OK && !c->needs_data)
        out_set(c->out[0], c->in[0]->dtype, c->in[0]->rank, sp.dims);
    return st;
}

static crun_status slice_run(KernelCtx *k)
{
    /* The spec is recomputed from the same inputs infer saw (cheap, no allocation). */
    InferCtx ic = {.node = k->node, .params = k->params, .n_in = k->n_in, .n_out = k->n_out, .in = k->in,
                   .out = k->out, .d = k->d};
    SliceSpec sp;
    crun_status st = slice_spec(&ic, &sp);
    if (st != CRUN_OK)
        return st;
    const Tensor *x = k->in[0];
    Tensor *o = k->out[0];
    int64_t n = tensor_numel(o);
    if (n == 0)
        return CRUN_OK;
    int r = x->rank;
    size_t es = dtype_size(x->dtype);
    int64_t xs[CRUN_MAX_RANK], idx[CRUN_MAX_RANK] = {0};
    shape_strides(x->dims, r, xs);
    if (r == 0)
        return elems_copy(o->data, x->data, 1, x->dtype) == CRUN_OK
                   ? CRUN_OK
                   : node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    /* Walk output rows; the innermost axis is a strided copy. */
    int64_t inner = sp.dims[r - 1], rows = n / inner;
    char *dst = o->data;
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = 0;
        for (int a = 0; a < r - 1; a++)
            off += (sp.start[a] + idx[a] * sp.step[a]) * xs[a];
        off += sp.start[r - 1] * xs[r - 1];
        const char *src = (const char *)x->data + (size_t)off * es;
        if (sp.step[r - 1] == 1) {
            st = elems_copy(dst, src, inner, x->dtype);
        } else if (x->dtype == CRUN_DTYPE_STRING) {
            for (int64_t i = 0; i < inner && st == CRUN_OK; i++)
                st = elems_copy(dst + (size_t)i * es, src + (ptrdiff_t)(i * sp.step[r - 1]) * (ptrdiff_t)es, 1,
                                x->dtype);
        } else {
            for (int64_t i = 0; i < inner; i++)
                memcpy(dst + (size_t)i * es, src + (ptrdiff_t)(i * sp.step[r - 1]) * (ptrdiff_t)es, es);
        }
        if (st != CRUN_OK)
            return node_fail(k->node, k->d, st, "out of memory");
        dst += (size_t)inner * es;
        for (int a = r - 2; a >= 0; a--) {
            if (++idx[a] < sp.dims[a])
                break;
            idx[a] = 0;
        }
    }
    return CRUN_OK;
}

static const KernelVariant slice_kernels[] = {{"slice", ISA_SCALAR, NULL, NULL, slice_run, NULL}, {0}};
const OpDesc op_Slice = {"", "Slice", 1, 5, 1, 1, 0, parse_slice, slice_infer, NULL, slice_kernels};

/* ---- Gather ---- */

static crun_status parse_gather(Node *n, Diag *d) { return parse_axis(n, d, 0, false); }

static crun_status gather_infer(InferCtx *c)
{
    const LayoutParams *p = c->params;
    const Tensor *x = c->in[0], *ind = c->in[1];
    int axis = axis_normalize(p->axis, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    NODE_CHECK(c, ind->dtype == CRUN_DTYPE_INT64 || ind->dtype == CRUN_DTYPE_INT32, "indices must be int32 or int64");
    int r = x->rank - 1 + ind->rank;
    NODE_CHECK(c, r <= CRUN_MAX_RANK, "result rank %d exceeds %d", r, CRUN_MAX_RANK);
    int64_t dims[CRUN_MAX_RANK];
    int k = 0;
    for (int i = 0; i < axis; i++)
        dims[k++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++)
        dims[k++] = ind->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        dims[k++] = x->dims[i];
    out_set(c->out[0], x->dtype, r, dims);
    return CRUN_OK;
}

static crun_status gather_run(KernelCtx *k)
{
    const LayoutParams *p = k->params;
    const Tensor *x = k->in[0], *ind = k->in[1];
    int axis = axis_normalize(p->axis, x->rank);
    size_t es = dtype_size(x->dtype);
    int64_t outer = shape_numel(x->dims, axis), dim = x->dims[axis];
    int64_t n_inner = shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    size_t inner = (size_t)n_inner * es;
    int64_t ni = tensor_numel(ind);
    char *dst = k->out[0]->data;
    for (int64_t j = 0; j < ni; j++) {
        int64_t i = tensor_get_int(ind, j);
        if (i < -dim || i >= dim)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "index %lld is out of range [%lld, %lld)", (long long)i,
                             (long long)-dim, (long long)dim);
    }
    for (int64_t o = 0; o < outer; o++) {
        const char *src = (const char *)x->data + (size_t)(o * dim) * inner;
        for (int64_t j = 0; j < ni; j++) {
            int64_t i = tensor_get_int(ind, j);
            if (i < 0)
                i += dim;
            if (elems_copy(dst, src + (size_t)i * inner, n_inner, x->dtype) != CRUN_OK)
                return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
            dst += inner;
        }
    }
    return CRUN_OK;
}

static const KernelVariant gather_kernels[] = {{"gather", ISA_SCALAR, NULL, NULL, gather_run, NULL}, {0}};
const OpDesc op_Gather = {"", "Gather", 2, 2, 1, 1, 0, parse_gather, gather_infer, NULL, gather_kernels};
