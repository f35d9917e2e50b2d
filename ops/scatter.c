/* scatter.c - element-wise indexing: GatherElements, GatherND, ScatterElements (and its
 * old name Scatter), ScatterND.
 *
 * Indices may be int32 or int64 and negative (counting from the end of the axis); any
 * index outside [-dim, dim) fails the run with CRUN_ERR_RUNTIME before anything is
 * written. Scatter writes go in index order, so duplicate indices keep the last update
 * (reduction 'none') or combine them all (add, mul, max, min). */
#include <string.h>

#include "ops/dtype_loops.h"
#include "ops/tensor_common.h"

static inline int64_t index_at(const Tensor *t, int64_t i)
{
    return t->dtype == CRUN_DTYPE_INT64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

static bool index_type_ok(const Tensor *t) { return t->dtype == CRUN_DTYPE_INT64 || t->dtype == CRUN_DTYPE_INT32; }

static crun_status index_error(const KernelCtx *k, int64_t v, int64_t dim)
{
    return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "index %lld is out of range [%lld, %lld)", (long long)v,
                     (long long)-dim, (long long)dim);
}

/* ==== reductions of the scatter ops ==== */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

/* dst[i] = dst[i] (op) src[i] for i < n; integers wrap. */
typedef void (*ReduceFn)(void *dst, const void *src, int64_t n, int op);

#define RED_BODY(TT, CC, LD, ST, ADD, MUL) \
    TT *d = dst; \
    const TT *s = src; \
    for (int64_t i = 0; i < n; i++) { \
        CC x = LD(d[i]), y = LD(s[i]); \
        switch (op) { \
        case RED_ADD: d[i] = ST(ADD); break; \
        case RED_MUL: d[i] = ST(MUL); break; \
        case RED_MAX: d[i] = ST(y > x ? y : x); break; \
        case RED_MIN: d[i] = ST(y < x ? y : x); break; \
        default: d[i] = s[i]; \
        } \
    }
#define DEF_RED_FLOAT(sfx, TT, CC, UU, LD, ST, unused) \
    static void red_##sfx(void *dst, const void *src, int64_t n, int op) { RED_BODY(TT, CC, LD, ST, x + y, x * y) }
#define DEF_RED_INT(sfx, TT, CC, UU, LD, ST, unused) \
    static void red_##sfx(void *dst, const void *src, int64_t n, int op) \
    { \
        RED_BODY(TT, CC, LD, ST, (TT)((UU)x + (UU)y), (TT)((UU)x * (UU)y)) \
    }
FOR_FLOAT_TYPES(DEF_RED_FLOAT, 0)
FOR_INT_TYPES(DEF_RED_INT, 0)
#define RED_ENTRY(sfx, T, C, U, LD, ST, unused) [DT_##sfx] = red_##sfx,
static const ReduceFn reduce_table[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(RED_ENTRY, 0)};

typedef struct ScatterParams {
    int64_t axis;
    int reduction;
} ScatterParams;

static crun_status parse_reduction(Node *n, int *red, Diag *d)
{
    const char *s;
    crun_status st = attr_get_string(n, "reduction", "none", &s, d);
    if (st != CRUN_OK)
        return st;
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *red = i;
            return CRUN_OK;
        }
    return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown reduction '%s'", s);
}

static crun_status parse_scatter(Node *n, Diag *d)
{
    ScatterParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "axis", 0, &p->axis, d);
    if (st == CRUN_OK)
        st = parse_reduction(n, &p->reduction, d);
    return st;
}

/* A reduction needs arithmetic on the data type. */
static crun_status check_reduction(InferCtx *c, const ScatterParams *p, crun_dtype t)
{
    NODE_CHECK(c, p->reduction == RED_NONE || (t < DTYPE_SLOTS && reduce_table[t]),
               "reduction is not supported for type %s", dtype_name(t));
    return CRUN_OK;
}

/* ==== GatherElements / ScatterElements: one index per element along axis ==== */

/* Walks the index tensor's elements: off is the data offset of element j without the
 * axis term (indices' coordinates on the data's strides). */
typedef struct ElemWalk {
    int rank, axis;
    int64_t dims[CRUN_MAX_RANK], xs[CRUN_MAX_RANK], idx[CRUN_MAX_RANK];
    int64_t off;
} ElemWalk;

static void walk_init(ElemWalk *w, const Tensor *data, const Tensor *ind, int axis)
{
    memset(w, 0, sizeof *w);
    w->rank = ind->rank;
    w->axis = axis;
    memcpy(w->dims, ind->dims, sizeof w->dims);
    shape_strides(data->dims, data->rank, w->xs);
}

static inline void walk_next(ElemWalk *w)
{
    for (int d = w->rank - 1; d >= 0; d--) {
        if (d != w->axis)
            w->off += w->xs[d];
        if (++w->idx[d] < w->dims[d])
            return;
        if (d != w->axis)
            w->off -= w->idx[d] * w->xs[d];
        w->idx[d] = 0;
    }
}

/* Index shapes: same rank as data, and within data's dims off the axis. */
static crun_status check_elem_indices(InferCtx *c, const Tensor *data, const Tensor *ind, int axis)
{
    NODE_CHECK(c, index_type_ok(ind), "indices must be int32 or int64");
    NODE_CHECK(c, ind->rank == data->rank, "indices have rank %d, data has %d", ind->rank, data->rank);
    for (int i = 0; i < data->rank; i++)
        NODE_CHECK(c, i == axis || ind->dims[i] <= data->dims[i], "indices dim %d is %lld, data has %lld", i,
                   (long long)ind->dims[i], (long long)data->dims[i]);
    return CRUN_OK;
}

static crun_status check_axis_indices(const KernelCtx *k, const Tensor *ind, int64_t dim)
{
    int64_t n = tensor_numel(ind);
    for (int64_t j = 0; j < n; j++) {
        int64_t v = index_at(ind, j);
        if (v < -dim || v >= dim)
            return index_error(k, v, dim);
    }
    return CRUN_OK;
}

static crun_status parse_gather_elements(Node *n, Diag *d)
{
    ScatterParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_int(n, "axis", 0, &p->axis, d) : d->status;
}

static crun_status gather_elements_infer(InferCtx *c)
{
    const ScatterParams *p = c->params;
    const Tensor *x = c->in[0], *ind = c->in[1];
    int axis = axis_normalize(p->axis, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    crun_status st = check_elem_indices(c, x, ind, axis);
    if (st == CRUN_OK)
        out_set(c->out[0], x->dtype, ind->rank, ind->dims);
    return st;
}

static crun_status gather_elements_run(KernelCtx *k)
{
    const ScatterParams *p = k->params;
    const Tensor *x = k->in[0], *ind = k->in[1];
    int axis = axis_normalize(p->axis, x->rank);
    int64_t dim = x->dims[axis], n = tensor_numel(ind);
    crun_status st = check_axis_indices(k, ind, dim);
    if (st != CRUN_OK || n == 0)
        return st;
    ElemWalk w;
    walk_init(&w, x, ind, axis);
    size_t es = dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = k->out[0]->data;
    bool strings = x->dtype == CRUN_DTYPE_STRING;
    for (int64_t j = 0; j < n && st == CRUN_OK; j++, walk_next(&w)) {
        int64_t v = index_at(ind, j);
        int64_t off = w.off + (v < 0 ? v + dim : v) * w.xs[axis];
        if (strings)
            st = elems_copy(dst + (size_t)j * es, src + (size_t)off * es, 1, x->dtype);
        else
            elem_move(dst + (size_t)j * es, src + (size_t)off * es, es);
    }
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static const KernelVariant gather_elements_kernels[] = {
    {"gather_elements", ISA_SCALAR, NULL, NULL, gather_elements_run, NULL}, {0}};
const OpDesc op_GatherElements = {"", "GatherElements", 2, 2, 1, 1, 0, parse_gather_elements, gather_elements_infer,
                                  NULL, gather_elements_kernels};

static crun_status scatter_elements_infer(InferCtx *c)
{
    const ScatterParams *p = c->params;
    const Tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    int axis = axis_normalize(p->axis, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    crun_status st = check_elem_indices(c, x, ind, axis);
    if (st != CRUN_OK)
        return st;
    NODE_CHECK(c, upd->dtype == x->dtype, "updates have type %s, data has %s", dtype_name(upd->dtype),
               dtype_name(x->dtype));
    NODE_CHECK(c, shape_equal(upd->dims, upd->rank, ind->dims, ind->rank), "updates and indices differ in shape");
    st = check_reduction(c, p, x->dtype);
    if (st == CRUN_OK)
        out_set(c->out[0], x->dtype, x->rank, x->dims);
    return st;
}

static crun_status scatter_elements_run(KernelCtx *k)
{
    const ScatterParams *p = k->params;
    const Tensor *x = k->in[0], *ind = k->in[1], *upd = k->in[2];
    Tensor *y = k->out[0];
    int axis = axis_normalize(p->axis, x->rank);
    int64_t dim = x->dims[axis], n = tensor_numel(ind);
    crun_status st = check_axis_indices(k, ind, dim); /* before writing anything */
    if (st != CRUN_OK)
        return st;
    if (elems_copy(y->data, x->data, tensor_numel(x), x->dtype) != CRUN_OK)
        return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (n == 0)
        return CRUN_OK;
    ElemWalk w;
    walk_init(&w, x, ind, axis);
    size_t es = dtype_size(x->dtype);
    ReduceFn red = p->reduction != RED_NONE ? reduce_table[x->dtype] : NULL;
    const char *src = upd->data;
    char *dst = y->data;
    bool strings = x->dtype == CRUN_DTYPE_STRING;
    for (int64_t j = 0; j < n && st == CRUN_OK; j++, walk_next(&w)) {
        int64_t v = index_at(ind, j);
        char *at = dst + (size_t)(w.off + (v < 0 ? v + dim : v) * w.xs[axis]) * es;
        if (red)
            red(at, src + (size_t)j * es, 1, p->reduction);
        else if (strings)
            st = elems_copy(at, src + (size_t)j * es, 1, x->dtype);
        else
            elem_move(at, src + (size_t)j * es, es);
    }
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static const KernelVariant scatter_elements_kernels[] = {
    {"scatter_elements", ISA_SCALAR, NULL, NULL, scatter_elements_run, NULL}, {0}};
const OpDesc op_ScatterElements = {"", "ScatterElements", 3, 3, 1, 1, 0, parse_scatter,
                                   scatter_elements_infer, NULL, scatter_elements_kernels};
/* Scatter (opsets 9-10, deprecated in 11) is ScatterElements without reduction. */
const OpDesc op_Scatter = {"", "Scatter", 3, 3, 1, 1, 0, parse_scatter, scatter_elements_infer, NULL,
                           scatter_elements_kernels};

/* ==== GatherND / ScatterND: index tuples address slices of data ==== */

typedef struct NdParams {
    int64_t batch_dims;
    int reduction;
} NdParams;

/* Data seen as [batch, addressed dims..., slice]: each tuple of m indices selects one
 * slice of `slice` elements within its batch. */
typedef struct NdGeom {
    int m;
    int64_t batch, tuples, slice; /* tuples per batch */
    int64_t dims[CRUN_MAX_RANK];  /* data dims the indices address */
    int64_t strides[CRUN_MAX_RANK];
    int64_t batch_stride;
} NdGeom;

static crun_status nd_geom(InferCtx *c, const Tensor *x, const Tensor *ind, int64_t b, NdGeom *g)
{
    NODE_CHECK(c, index_type_ok(ind), "indices must be int32 or int64");
    NODE_CHECK(c, ind->rank >= 1, "indices must have rank >= 1");
    NODE_CHECK(c, b >= 0 && b < ind->rank && b < x->rank, "batch_dims %lld is out of range", (long long)b);
    int64_t m = ind->dims[ind->rank - 1];
    NODE_CHECK(c, m >= 1 && m <= x->rank - b, "index tuples have %lld entries, data allows 1 to %lld", (long long)m,
               (long long)(x->rank - b));
    for (int i = 0; i < b; i++)
        NODE_CHECK(c, ind->dims[i] == x->dims[i], "batch dim %d differs: indices %lld, data %lld", i,
                   (long long)ind->dims[i], (long long)x->dims[i]);
    int64_t xs[CRUN_MAX_RANK];
    shape_strides(x->dims, x->rank, xs);
    g->m = (int)m;
    g->batch = shape_numel(x->dims, (int)b);
    g->tuples = shape_numel(ind->dims + b, ind->rank - 1 - (int)b);
    g->slice = shape_numel(x->dims + b + m, x->rank - (int)(b + m));
    g->batch_stride = b > 0 ? xs[b - 1] : 0;
    for (int i = 0; i < m; i++) {
        g->dims[i] = x->dims[b + i];
        g->strides[i] = xs[b + i];
    }
    return CRUN_OK;
}

/* Offset of tuple t (0 <= t < batch * tuples) in data, or an error for a bad index. */
static crun_status nd_offset(const KernelCtx *k, const NdGeom *g, const Tensor *ind, int64_t t, int64_t *off)
{
    int64_t o = (t / CRUN_MAX(g->tuples, (int64_t)1)) * g->batch_stride;
    for (int i = 0; i < g->m; i++) {
        int64_t v = index_at(ind, t * g->m + i), dim = g->dims[i];
        if (v < -dim || v >= dim)
            return index_error(k, v, dim);
        o += (v < 0 ? v + dim : v) * g->strides[i];
    }
    *off = o;
    return CRUN_OK;
}

static crun_status parse_nd(Node *n, Diag *d)
{
    NdParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "batch_dims", 0, &p->batch_dims, d);
    if (st == CRUN_OK)
        st = parse_reduction(n, &p->reduction, d);
    return st;
}

static crun_status gather_nd_infer(InferCtx *c)
{
    const NdParams *p = c->params;
    const Tensor *x = c->in[0], *ind = c->in[1];
    NdGeom g = {0};
    crun_status st = nd_geom(c, x, ind, p->batch_dims, &g);
    if (st != CRUN_OK)
        return st;
    /* indices.shape[:-1] + data.shape[batch_dims + m:] */
    int r = ind->rank - 1 + x->rank - (int)p->batch_dims - g.m;
    NODE_CHECK(c, r <= CRUN_MAX_RANK, "output rank %d exceeds %d", r, CRUN_MAX_RANK);
    int64_t dims[CRUN_MAX_RANK];
    int k = 0;
    for (int i = 0; i < ind->rank - 1; i++)
        dims[k++] = ind->dims[i];
    for (int i = (int)p->batch_dims + g.m; i < x->rank; i++)
        dims[k++] = x->dims[i];
    out_set(c->out[0], x->dtype, r, dims);
    return CRUN_OK;
}

static crun_status nd_geom_run(KernelCtx *k, int64_t b, NdGeom *g)
{
    InferCtx ic = {.node = k->node, .params = k->params, .n_in = k->n_in, .in = k->in, .d = k->d};
    return nd_geom(&ic, k->in[0], k->in[1], b, g);
}

static crun_status gather_nd_run(KernelCtx *k)
{
    const NdParams *p = k->params;
    const Tensor *x = k->in[0], *ind = k->in[1];
    NdGeom g = {0};
    crun_status st = nd_geom_run(k, p->batch_dims, &g);
    int64_t n = g.batch * g.tuples;
    size_t es = dtype_size(x->dtype), slice_bytes = (size_t)g.slice * es;
    for (int64_t t = 0; t < n && st == CRUN_OK; t++) {
        int64_t off = 0;
        st = nd_offset(k, &g, ind, t, &off);
        if (st == CRUN_OK && elems_copy((char *)k->out[0]->data + (size_t)t * slice_bytes,
                                        (const char *)x->data + (size_t)off * es, g.slice, x->dtype) != CRUN_OK)
            return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return st;
}

static const KernelVariant gather_nd_kernels[] = {{"gather_nd", ISA_SCALAR, NULL, NULL, gather_nd_run, NULL}, {0}};
const OpDesc op_GatherND = {"", "GatherND", 2, 2, 1, 1, 0, parse_nd, gather_nd_infer, NULL, gather_nd_kernels};

static crun_status scatter_nd_infer(InferCtx *c)
{
    const NdParams *p = c->params;
    const Tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    NdGeom g = {0};
    crun_status st = nd_geom(c, x, ind, 0, &g);
    if (st != CRUN_OK)
        return st;
    NODE_CHECK(c, upd->dtype == x->dtype, "updates have type %s, data has %s", dtype_name(upd->dtype),
               dtype_name(x->dtype));
    /* updates.shape == indices.shape[:-1] + data.shape[m:] */
    int64_t want[2 * CRUN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < ind->rank - 1; i++)
        want[r++] = ind->dims[i];
    for (int i = g.m; i < x->rank; i++)
        want[r++] = x->dims[i];
    char su[96];
    NODE_CHECK(c, shape_equal(upd->dims, upd->rank, want, r), "updates have shape %s, expected indices.shape[:-1] + "
               "data.shape[%d:]", shape_str(upd->dims, upd->rank, su, sizeof su), g.m);
    NODE_CHECK(c, p->reduction == RED_NONE || (x->dtype < DTYPE_SLOTS && reduce_table[x->dtype]),
               "reduction is not supported for type %s", dtype_name(x->dtype));
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

static crun_status scatter_nd_run(KernelCtx *k)
{
    const NdParams *p = k->params;
    const Tensor *x = k->in[0], *ind = k->in[1], *upd = k->in[2];
    Tensor *y = k->out[0];
    NdGeom g = {0};
    crun_status st = nd_geom_run(k, 0, &g);
    int64_t n = g.batch * g.tuples, off = 0;
    for (int64_t t = 0; t < n && st == CRUN_OK; t++) /* validate before writing */
        st = nd_offset(k, &g, ind, t, &off);
    if (st != CRUN_OK)
        return st;
    if (elems_copy(y->data, x->data, tensor_numel(x), x->dtype) != CRUN_OK)
        return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    size_t es = dtype_size(x->dtype);
    ReduceFn red = p->reduction != RED_NONE ? reduce_table[x->dtype] : NULL;
    for (int64_t t = 0; t < n; t++) {
        nd_offset(k, &g, ind, t, &off);
        char *dst = (char *)y->data + (size_t)off * es;
        const char *src = (const char *)upd->data + (size_t)(t * g.slice) * es;
        if (red)
            red(dst, src, g.slice, p->reduction);
        else if (elems_copy(dst, src, g.slice, x->dtype) != CRUN_OK)
            return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return CRUN_OK;
}

static const KernelVariant scatter_nd_kernels[] = {{"scatter_nd", ISA_SCALAR, NULL, NULL, scatter_nd_run, NULL}, {0}};
const OpDesc op_ScatterND = {"", "ScatterND", 3, 3, 1, 1, 0, parse_nd, scatter_nd_infer, NULL,
                             scatter_nd_kernels};
