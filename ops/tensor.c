/* tensor.c - ops that rearrange a tensor's elements without computing on them: Pad,
 * Expand, Tile, Split, DepthToSpace, SpaceToDepth, ReverseSequence, Trilu, EyeLike.
 *
 * All of them move raw element bytes (strings deep-copied through tensor_common.h), so
 * every dtype works. Most are a strided view of the input copied densely (view_copy). */
#include <stdlib.h>
#include <string.h>

#include "ops/tensor_common.h"
#include "runtime/threadpool.h"

/* One element of any dtype (complex128 is the widest); a string is its char*. */
typedef union Elem {
    unsigned char bytes[16];
    const char *str;
    uint64_t u;
} Elem;

/* The zero of dtype t: all-zero bytes, or "" for strings. */
static Elem elem_zero(crun_dtype t)
{
    Elem e;
    memset(&e, 0, sizeof e);
    if (t == CRUN_DTYPE_STRING)
        e.str = "";
    return e;
}

/* ==== Pad ==== */

enum { PADMODE_CONSTANT, PADMODE_REFLECT, PADMODE_EDGE };

typedef struct PadParams {
    int mode;
    int n_pads;   /* attribute pads before opset 11 */
    int64_t pads[2 * CRUN_MAX_RANK];
    float value;
} PadParams;

static crun_status parse_pad(Node *n, Diag *d)
{
    PadParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    const char *mode;
    crun_status st = attr_get_string(n, "mode", "constant", &mode, d);
    if (st != CRUN_OK)
        return st;
    if (strcmp(mode, "constant") == 0)
        p->mode = PADMODE_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = PADMODE_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = PADMODE_EDGE;
    else
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown mode '%s'", mode);
    if (n->opset >= 11)
        return CRUN_OK;
    /* Pad-1 names the attribute 'paddings', Pad-2 'pads'; both list all begins, then all ends. */
    const char *name = n->opset < 2 ? "paddings" : "pads";
    if (!node_attr(n, name))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute '%s' is required", name);
    st = attr_get_ints(n, name, p->pads, 2 * CRUN_MAX_RANK, &p->n_pads, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "value", 0.0f, &p->value, d);
    return st;
}

/* Per axis: negative pads crop first (crop elements from the start, len kept), then
 * `before` elements are added in front and the rest behind (as ONNX Runtime does). */
typedef struct PadAxis {
    int64_t crop, len, before, out;
} PadAxis;

/* Pads of every axis from the attribute or input 1; *unknown when not known yet. */
static crun_status pad_geometry(const Node *n, const void *params, const Tensor *const *in, int n_in, PadAxis *ax,
                                bool *unknown, Diag *d)
{
    const PadParams *p = params;
    const Tensor *x = in[0];
    int64_t pads[2 * CRUN_MAX_RANK];
    int count = p->n_pads;
    if (n->opset < 11) {
        memcpy(pads, p->pads, sizeof pads);
    } else {
        if (n_in < 2 || !in[1])
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "input 'pads' is required");
        crun_status st = input_ints(n, d, in[1], "pads", pads, 2 * CRUN_MAX_RANK, &count, unknown);
        if (st != CRUN_OK || *unknown)
            return st;
    }
    if (count != 2 * x->rank)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "pads has %d values, expected %d for rank %d", count,
                         2 * x->rank, x->rank);
    /* Bad values of the pads input are data errors; of the attribute, model errors. */
    crun_status bad = n->opset < 11 ? CRUN_ERR_INVALID_MODEL : CRUN_ERR_RUNTIME;
    for (int a = 0; a < x->rank; a++) {
        int64_t b = pads[a], e = pads[a + x->rank], dim = x->dims[a];
        /* Pads are bounded so that sums below cannot overflow. */
        if (b < -dim || e < -dim || b > CRUN_MAX_NUMEL || e > CRUN_MAX_NUMEL)
            return node_fail(n, d, bad, "pads of axis %d (%lld, %lld) are out of range", a,
                             (long long)b, (long long)e);
        ax[a].crop = b < 0 ? -b : 0;
        ax[a].len = dim - ax[a].crop - (e < 0 ? -e : 0);
        if (ax[a].len < 0)
            return node_fail(n, d, bad, "pads of axis %d crop more than its %lld elements", a,
                             (long long)dim);
        ax[a].before = b > 0 ? b : 0;
        ax[a].out = ax[a].before + ax[a].len + (e > 0 ? e : 0);
        if (p->mode != PADMODE_CONSTANT && ax[a].len == 0 && ax[a].out > 0)
            return node_fail(n, d, bad, "cannot pad axis %d in %s mode: it has no elements", a,
                             p->mode == PADMODE_EDGE ? "edge" : "reflect");
    }
    return CRUN_OK;
}

static crun_status pad_infer(InferCtx *c)
{
    PadAxis ax[CRUN_MAX_RANK];
    const Tensor *x = c->in[0];
    crun_status st = pad_geometry(c->node, c->params, c->in, c->n_in, ax, &c->needs_data, c->d);
    if (st != CRUN_OK || c->needs_data)
        return st;
    if (c->n_in > 2 && c->in[2]) {
        NODE_CHECK(c, c->in[2]->dtype == x->dtype, "constant_value has type %s, data has %s",
                   dtype_name(c->in[2]->dtype), dtype_name(x->dtype));
        NODE_CHECK(c, tensor_numel(c->in[2]) <= 1, "constant_value must be a scalar");
    }
    int64_t dims[CRUN_MAX_RANK];
    for (int a = 0; a < x->rank; a++)
        dims[a] = ax[a].out;
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

/* Input index along one axis for output index o, or -1 for the constant. Reflect mirrors
 * without repeating the edge (numpy 'reflect'), periodically for pads longer than the axis. */
static int64_t pad_source(int mode, const PadAxis *a, int64_t o)
{
    int64_t j = o - a->before;
    if (j >= 0 && j < a->len)
        return a->crop + j;
    if (mode == PADMODE_CONSTANT || a->len == 0)
        return -1;
    if (mode == PADMODE_EDGE || a->len == 1) {
        j = j < 0 ? 0 : a->len - 1;
    } else {
        int64_t period = 2 * (a->len - 1);
        j %= period;
        if (j < 0)
            j += period;
        if (j >= a->len)
            j = period - j;
    }
    return a->crop + j;
}

static crun_status pad_prepare(PrepCtx *c)
{
    const Tensor *o = c->out[0];
    int64_t total = 0;
    for (int a = 0; a < o->rank; a++)
        total += o->dims[a];
    c->ws_bytes = (size_t)total * sizeof(int64_t);
    return CRUN_OK;
}

typedef struct PadJob {
    int rank;
    const PadAxis *ax;
    const int64_t *map[CRUN_MAX_RANK]; /* per axis: input index of each output index, or -1 */
    int64_t xs[CRUN_MAX_RANK];         /* input strides */
    const char *x;
    char *y;
    crun_dtype dtype;
    size_t es;
    Elem value;
    int64_t rows, rows_per_task;
    crun_status status; /* strings only (one thread) */
} PadJob;

static crun_status pad_row(const PadJob *j, const char *src_row, char *dst, bool fill)
{
    int last = j->rank - 1;
    const PadAxis *a = &j->ax[last];
    if (fill)
        return elems_fill(dst, &j->value, a->out, j->dtype);
    crun_status st = CRUN_OK;
    for (int64_t o = 0; o < a->out && st == CRUN_OK; o++) {
        if (o == a->before && a->len > 0) {
            st = elems_copy(dst + (size_t)o * j->es, src_row + (size_t)a->crop * j->es, a->len, j->dtype);
            o += a->len - 1;
            continue;
        }
        int64_t s = j->map[last][o];
        st = s < 0 ? elems_fill(dst + (size_t)o * j->es, &j->value, 1, j->dtype)
                   : elems_copy(dst + (size_t)o * j->es, src_row + (size_t)s * j->es, 1, j->dtype);
    }
    return st;
}

static void pad_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    PadJob *j = ctx;
    int last = j->rank - 1;
    int64_t r0 = t * j->rows_per_task, r1 = CRUN_MIN(j->rows, r0 + j->rows_per_task);
    size_t row_bytes = (size_t)j->ax[last].out * j->es;
    for (int64_t r = r0; r < r1 && j->status == CRUN_OK; r++) {
        int64_t off = 0, rem = r;
        bool fill = false;
        for (int a = last - 1; a >= 0; a--) {
            int64_t s = j->map[a][rem % j->ax[a].out];
            rem /= j->ax[a].out;
            fill |= s < 0;
            off += s * j->xs[a];
        }
        crun_status st = pad_row(j, j->x + (size_t)(fill ? 0 : off) * j->es, j->y + (size_t)r * row_bytes, fill);
        if (st != CRUN_OK)
            j->status = st;
    }
}

static crun_status pad_run(KernelCtx *k)
{
    const PadParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    PadAxis ax[CRUN_MAX_RANK];
    bool unknown = false;
    crun_status st = pad_geometry(k->node, k->params, k->in, k->n_in, ax, &unknown, k->d);
    if (st != CRUN_OK)
        return st;
    int64_t numel = tensor_numel(y);
    if (numel == 0)
        return CRUN_OK;
    PadJob j = {.rank = x->rank, .ax = ax, .x = x->data, .y = y->data, .dtype = x->dtype,
                .es = dtype_size(x->dtype), .value = elem_zero(x->dtype), .status = CRUN_OK};
    if (k->node->opset < 11) {
        Tensor v = {.dtype = x->dtype, .data = j.value.bytes};
        tensor_set_double(&v, 0, p->value);
    } else if (k->n_in > 2 && k->in[2] && tensor_numel(k->in[2]) == 1) {
        memcpy(j.value.bytes, k->in[2]->data, j.es);
    }
    if (x->rank == 0)
        return elems_copy(y->data, x->data, 1, x->dtype);
    shape_strides(x->dims, x->rank, j.xs);
    int64_t *maps = k->ws;
    for (int a = 0; a < x->rank; a++) {
        j.map[a] = maps;
        for (int64_t o = 0; o < ax[a].out; o++)
            maps[o] = pad_source(p->mode, &ax[a], o);
        maps += ax[a].out;
    }
    j.rows = numel / ax[x->rank - 1].out;
    j.rows_per_task = CRUN_MAX((int64_t)1, 16384 / ax[x->rank - 1].out);
    bool strings = x->dtype == CRUN_DTYPE_STRING;
    if (strings)
        j.rows_per_task = j.rows;
    pool_for(strings ? NULL : k->pool, (j.rows + j.rows_per_task - 1) / j.rows_per_task, pad_task, &j);
    if (j.status != CRUN_OK)
        return node_fail(k->node, k->d, j.status, "out of memory");
    return CRUN_OK;
}

static const KernelVariant pad_kernels[] = {{"pad", ISA_SCALAR, NULL, pad_prepare, pad_run, NULL}, {0}};
const OpDesc op_Pad = {"", "Pad", 1, 3, 1, 1, 0, parse_pad, pad_infer, NULL, pad_kernels};

/* ==== Expand: broadcast the input to a shape (both ways, as numpy does) ==== */

static crun_status expand_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    int64_t shape[CRUN_MAX_RANK], dims[CRUN_MAX_RANK];
    int n, rank;
    crun_status st = input_ints(c->node, c->d, c->in[1], "shape", shape, CRUN_MAX_RANK, &n, &c->needs_data);
    if (st != CRUN_OK || c->needs_data)
        return st;
    for (int i = 0; i < n; i++)
        DATA_CHECK(c, shape[i] >= 0, "shape entry %d is %lld", i, (long long)shape[i]);
    char sx[96], ss[96];
    DATA_CHECK(c, broadcast_shape(x->dims, x->rank, shape, n, dims, &rank), "cannot expand %s to %s",
               shape_str(x->dims, x->rank, sx, sizeof sx), shape_str(shape, n, ss, sizeof ss));
    out_set(c->out[0], x->dtype, rank, dims);
    return CRUN_OK;
}

/* A view of x broadcast to y's dims (x's dims align to the right). */
static void broadcast_view(const Tensor *x, const Tensor *y, StridedView *v)
{
    int64_t xs[CRUN_MAX_RANK];
    shape_strides(x->dims, x->rank, xs);
    v->rank = y->rank;
    for (int i = 0; i < y->rank; i++) {
        int xi = i - (y->rank - x->rank);
        v->dims[i] = y->dims[i];
        v->stride[i] = xi < 0 || x->dims[xi] == 1 ? 0 : xs[xi];
    }
}

static crun_status expand_run(KernelCtx *k)
{
    StridedView v;
    broadcast_view(k->in[0], k->out[0], &v);
    view_simplify(&v);
    crun_status st = view_copy(&v, k->in[0]->data, k->out[0]->data, k->out[0]->dtype, k->pool);
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static const KernelVariant expand_kernels[] = {{"expand", ISA_SCALAR, NULL, NULL, expand_run, NULL}, {0}};
const OpDesc op_Expand = {"", "Expand", 2, 2, 1, 1, 0, NULL, expand_infer, NULL, expand_kernels};

/* ==== Tile: repeats per axis (Tile-1: one count `tiles` along one `axis`, both inputs) ==== */

static crun_status tile_repeats(const Node *n, const Tensor *const *in, int64_t *rep, bool *unknown, Diag *d)
{
    const Tensor *x = in[0];
    int count;
    if (n->opset < 6) {
        int64_t tiles, axis;
        if (!in[1] || !in[2] || tensor_numel(in[1]) != 1 || tensor_numel(in[2]) != 1 || !dtype_is_int(in[1]->dtype) ||
            !dtype_is_int(in[2]->dtype))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'tiles' and 'axis' must be integer scalars");
        if (!in[1]->data || !in[2]->data) {
            *unknown = true;
            return CRUN_OK;
        }
        tiles = tensor_get_int(in[1], 0);
        axis = tensor_get_int(in[2], 0);
        int a = axis_normalize(axis, x->rank);
        if (a < 0)
            return node_fail(n, d, CRUN_ERR_RUNTIME, "axis %lld is out of range", (long long)axis);
        for (int i = 0; i < x->rank; i++)
            rep[i] = i == a ? tiles : 1;
        count = x->rank;
    } else {
        crun_status st = input_ints(n, d, in[1], "repeats", rep, CRUN_MAX_RANK, &count, unknown);
        if (st != CRUN_OK || *unknown)
            return st;
    }
    if (count != x->rank)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "repeats has %d values for rank %d", count, x->rank);
    for (int i = 0; i < x->rank; i++)
        if (rep[i] < 0 || rep[i] > CRUN_MAX_NUMEL)
            return node_fail(n, d, CRUN_ERR_RUNTIME, "repeat of axis %d is %lld", i, (long long)rep[i]);
    return CRUN_OK;
}

static crun_status tile_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    int64_t rep[CRUN_MAX_RANK], dims[CRUN_MAX_RANK];
    crun_status st = tile_repeats(c->node, c->in, rep, &c->needs_data, c->d);
    if (st != CRUN_OK || c->needs_data)
        return st;
    for (int i = 0; i < x->rank; i++) {
        DATA_CHECK(c, rep[i] == 0 || x->dims[i] <= CRUN_MAX_NUMEL / rep[i], "output is too large");
        dims[i] = x->dims[i] * rep[i];
    }
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

static crun_status tile_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *y = k->out[0];
    int64_t xs[CRUN_MAX_RANK];
    shape_strides(x->dims, x->rank, xs);
    /* y viewed as [rep0, d0, rep1, d1, ...]: each repeat reads the whole axis again. */
    StridedView v = {.rank = 2 * x->rank};
    for (int i = 0; i < x->rank; i++) {
        v.dims[2 * i] = x->dims[i] ? y->dims[i] / x->dims[i] : 0;
        v.stride[2 * i] = 0;
        v.dims[2 * i + 1] = x->dims[i];
        v.stride[2 * i + 1] = xs[i];
    }
    if (tensor_numel(y) == 0)
        return CRUN_OK;
    view_simplify(&v);
    crun_status st = view_copy(&v, x->data, y->data, x->dtype, k->pool);
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static const KernelVariant tile_kernels[] = {{"tile", ISA_SCALAR, NULL, NULL, tile_run, NULL}, {0}};
const OpDesc op_Tile = {"", "Tile", 2, 3, 1, 1, 0, NULL, tile_infer, NULL, tile_kernels};

/* ==== Split: sizes from the attribute (opset < 13) or input 1 (Split-1 and opset >= 13) ==== */

typedef struct SplitParams {
    int64_t axis;
    int n_split; /* -1: no attribute */
    int64_t split[];
} SplitParams;

static crun_status parse_split(Node *n, Diag *d)
{
    const Attr *a = n->opset < 13 ? node_attr(n, "split") : NULL;
    int cap = a && a->type == ATTR_INTS ? a->n : 0;
    SplitParams *p = params_alloc(n, sizeof *p + (size_t)cap * sizeof(int64_t), d);
    if (!p)
        return d->status;
    p->n_split = -1;
    crun_status st = attr_get_int(n, "axis", 0, &p->axis, d);
    if (st == CRUN_OK && a)
        st = attr_get_ints(n, "split", p->split, cap, &p->n_split, d);
    return st;
}

/* Size of output i along the axis (split list or equal parts); *unknown when the split
 * input is not known yet. */
static crun_status split_sizes(const Node *n, const SplitParams *p, const Tensor *const *in, int n_in, int n_out,
                               int64_t dim, int64_t *sizes, bool *unknown, Diag *d)
{
    const Tensor *s = n_in > 1 ? in[1] : NULL;
    crun_status bad = CRUN_ERR_INVALID_MODEL; /* CRUN_ERR_RUNTIME for the values of an input */
    if (p->n_split >= 0) {
        if (p->n_split != n_out)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "split has %d values for %d outputs", p->n_split, n_out);
        memcpy(sizes, p->split, (size_t)n_out * sizeof *sizes);
    } else if (s && (n->opset < 2 || n->opset >= 13)) {
        if (!dtype_is_int(s->dtype) || s->rank > 1 || tensor_numel(s) != n_out)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'split' must be a 1-D int64 tensor with %d values", n_out);
        if (!s->data) {
            *unknown = true;
            return CRUN_OK;
        }
        for (int i = 0; i < n_out; i++)
            sizes[i] = tensor_get_int(s, i);
        bad = CRUN_ERR_RUNTIME;
    } else {
        if (dim % n_out != 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "axis of size %lld cannot be split into %d equal parts",
                             (long long)dim, n_out);
        for (int i = 0; i < n_out; i++)
            sizes[i] = dim / n_out;
    }
    int64_t sum = 0;
    for (int i = 0; i < n_out; i++) {
        if (sizes[i] < 0 || sizes[i] > dim)
            return node_fail(n, d, bad, "split size %d is %lld", i, (long long)sizes[i]);
        sum += sizes[i];
    }
    if (sum != dim)
        return node_fail(n, d, bad, "split sizes add up to %lld, the axis has %lld", (long long)sum, (long long)dim);
    return CRUN_OK;
}

static crun_status split_infer(InferCtx *c)
{
    const SplitParams *p = c->params;
    const Tensor *x = c->in[0];
    int axis = axis_normalize(p->axis, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    int64_t *sizes = malloc((size_t)c->n_out * sizeof *sizes);
    if (!sizes)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    crun_status st = split_sizes(c->node, p, c->in, c->n_in, c->n_out, x->dims[axis], sizes, &c->needs_data, c->d);
    for (int i = 0; st == CRUN_OK && !c->needs_data && i < c->n_out; i++) {
        if (!c->out[i])
            continue;
        int64_t dims[CRUN_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = sizes[i];
        out_set(c->out[i], x->dtype, x->rank, dims);
    }
    free(sizes);
    return st;
}

static crun_status split_run(KernelCtx *k)
{
    const SplitParams *p = k->params;
    const Tensor *x = k->in[0];
    int axis = axis_normalize(p->axis, x->rank);
    size_t es = dtype_size(x->dtype);
    int64_t outer = shape_numel(x->dims, axis), dim = x->dims[axis];
    int64_t inner = shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    int64_t *sizes = k->ws; /* omitted outputs still take their share of the axis */
    bool unknown = false;
    crun_status st = split_sizes(k->node, p, k->in, k->n_in, k->n_out, dim, sizes, &unknown, k->d);
    int64_t col = 0; /* start of output i along the axis */
    for (int i = 0; i < k->n_out && st == CRUN_OK; i++) {
        const Tensor *y = k->out[i];
        for (int64_t r = 0; y && r < outer && st == CRUN_OK; r++) {
            const char *src = (const char *)x->data + (size_t)((r * dim + col) * inner) * es;
            char *dst = (char *)y->data + (size_t)(r * sizes[i] * inner) * es;
            if ((st = elems_copy(dst, src, sizes[i] * inner, x->dtype)) != CRUN_OK)
                return node_fail(k->node, k->d, st, "out of memory");
        }
        col += sizes[i];
    }
    return st;
}

static crun_status split_prepare(PrepCtx *c)
{
    c->ws_bytes = (size_t)c->n_out * sizeof(int64_t);
    return CRUN_OK;
}

static const KernelVariant split_kernels[] = {{"split", ISA_SCALAR, NULL, split_prepare, split_run, NULL}, {0}};
const OpDesc op_Split = {"", "Split", 1, 2, 1, -1, 0, parse_split, split_infer, NULL, split_kernels};

/* ==== DepthToSpace / SpaceToDepth (NCHW) ==== */

typedef struct BlockParams {
    int64_t blocksize;
    bool crd; /* DepthToSpace mode CRD (column, row, depth); DCR otherwise */
} BlockParams;

static crun_status parse_block(Node *n, Diag *d)
{
    BlockParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    if (!node_attr(n, "blocksize"))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'blocksize' is required");
    crun_status st = attr_get_int(n, "blocksize", 0, &p->blocksize, d);
    if (st != CRUN_OK)
        return st;
    if (p->blocksize < 1 || p->blocksize > 65536)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "blocksize %lld is out of range", (long long)p->blocksize);
    const char *mode;
    st = attr_get_string(n, "mode", "DCR", &mode, d);
    if (st != CRUN_OK)
        return st;
    if (strcmp(mode, "CRD") != 0 && strcmp(mode, "DCR") != 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown mode '%s'", mode);
    p->crd = strcmp(mode, "CRD") == 0;
    return CRUN_OK;
}

static crun_status d2s_infer(InferCtx *c)
{
    const BlockParams *p = c->params;
    const Tensor *x = c->in[0];
    int64_t b = p->blocksize;
    NODE_CHECK(c, x->rank == 4, "input must be 4-D (NCHW), got rank %d", x->rank);
    NODE_CHECK(c, x->dims[1] % (b * b) == 0, "channels %lld are not a multiple of blocksize^2 = %lld",
               (long long)x->dims[1], (long long)(b * b));
    int64_t dims[4] = {x->dims[0], x->dims[1] / (b * b), x->dims[2] * b, x->dims[3] * b};
    out_set(c->out[0], x->dtype, 4, dims);
    return CRUN_OK;
}

static crun_status block_view_run(KernelCtx *k, StridedView *v)
{
    view_simplify(v);
    crun_status st = view_copy(v, k->in[0]->data, k->out[0]->data, k->out[0]->dtype, k->pool);
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static crun_status d2s_run(KernelCtx *k)
{
    const BlockParams *p = k->params;
    const Tensor *x = k->in[0];
    int64_t b = p->blocksize, n = x->dims[0], c = x->dims[1] / (b * b), h = x->dims[2], w = x->dims[3];
    int64_t hw = h * w;
    /* Output as [N, C', H, b1, W, b2]; input channel (b1*b + b2)*C' + c' for DCR,
     * c'*b*b + b1*b + b2 for CRD. */
    StridedView v = {.rank = 6,
                     .dims = {n, c, h, b, w, b},
                     .stride = {x->dims[1] * hw, (p->crd ? b * b : 1) * hw, w, (p->crd ? b : b * c) * hw, 1,
                                (p->crd ? 1 : c) * hw}};
    return block_view_run(k, &v);
}

static crun_status s2d_infer(InferCtx *c)
{
    const BlockParams *p = c->params;
    const Tensor *x = c->in[0];
    int64_t b = p->blocksize;
    NODE_CHECK(c, x->rank == 4, "input must be 4-D (NCHW), got rank %d", x->rank);
    NODE_CHECK(c, x->dims[2] % b == 0 && x->dims[3] % b == 0, "height %lld and width %lld must be multiples of %lld",
               (long long)x->dims[2], (long long)x->dims[3], (long long)b);
    NODE_CHECK(c, x->dims[1] <= CRUN_MAX_NUMEL / (b * b), "output is too large");
    int64_t dims[4] = {x->dims[0], x->dims[1] * b * b, x->dims[2] / b, x->dims[3] / b};
    out_set(c->out[0], x->dtype, 4, dims);
    return CRUN_OK;
}

static crun_status s2d_run(KernelCtx *k)
{
    const BlockParams *p = k->params;
    const Tensor *x = k->in[0];
    int64_t b = p->blocksize, n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    /* Output channel (b1*b + b2)*C + c reads x[n, c, h'*b + b1, w'*b + b2]: output viewed
     * as [N, b1, b2, C, H', W']. */
    StridedView v = {.rank = 6,
                     .dims = {n, b, b, c, h / b, w / b},
                     .stride = {c * h * w, w, 1, h * w, b * w, b}};
    return block_view_run(k, &v);
}

static const KernelVariant d2s_kernels[] = {{"depth_to_space", ISA_SCALAR, NULL, NULL, d2s_run, NULL}, {0}};
static const KernelVariant s2d_kernels[] = {{"space_to_depth", ISA_SCALAR, NULL, NULL, s2d_run, NULL}, {0}};
const OpDesc op_DepthToSpace = {"", "DepthToSpace", 1, 1, 1, 1, 0, parse_block, d2s_infer, NULL, d2s_kernels};
const OpDesc op_SpaceToDepth = {"", "SpaceToDepth", 1, 1, 1, 1, 0, parse_block, s2d_infer, NULL, s2d_kernels};

/* ==== ReverseSequence ==== */

typedef struct ReverseParams {
    int64_t batch_axis, time_axis;
} ReverseParams;

static crun_status parse_reverse(Node *n, Diag *d)
{
    ReverseParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "batch_axis", 1, &p->batch_axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "time_axis", 0, &p->time_axis, d);
    if (st == CRUN_OK && !((p->batch_axis == 0 && p->time_axis == 1) || (p->batch_axis == 1 && p->time_axis == 0)))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "batch_axis and time_axis must be 0 and 1 (either way)");
    return st;
}

static crun_status reverse_infer(InferCtx *c)
{
    const ReverseParams *p = c->params;
    const Tensor *x = c->in[0], *lens = c->in[1];
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2");
    NODE_CHECK(c, dtype_is_int(lens->dtype) && lens->rank == 1 && lens->dims[0] == x->dims[p->batch_axis],
               "sequence_lens must be 1-D with %lld values", (long long)x->dims[p->batch_axis]);
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

static crun_status reverse_run(KernelCtx *k)
{
    const ReverseParams *p = k->params;
    const Tensor *x = k->in[0], *lens = k->in[1];
    int64_t nb = x->dims[p->batch_axis], nt = x->dims[p->time_axis];
    int64_t inner = shape_numel(x->dims + 2, x->rank - 2);
    /* Element strides (in slices of `inner`) of the batch and time axes. */
    int64_t sb = p->batch_axis == 0 ? nt : 1, stt = p->time_axis == 0 ? nb : 1;
    size_t es = dtype_size(x->dtype);
    for (int64_t b = 0; b < nb; b++) {
        int64_t len = tensor_get_int(lens, b);
        if (len < 0 || len > nt)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "sequence_lens[%lld] = %lld is out of range [0, %lld]",
                             (long long)b, (long long)len, (long long)nt);
        for (int64_t t = 0; t < nt; t++) {
            int64_t from = t < len ? len - 1 - t : t;
            size_t src = (size_t)((b * sb + from * stt) * inner) * es, dst = (size_t)((b * sb + t * stt) * inner) * es;
            crun_status st = elems_copy((char *)k->out[0]->data + dst, (const char *)x->data + src, inner, x->dtype);
            if (st != CRUN_OK)
                return node_fail(k->node, k->d, st, "out of memory");
        }
    }
    return CRUN_OK;
}

static const KernelVariant reverse_kernels[] = {{"reverse_sequence", ISA_SCALAR, NULL, NULL, reverse_run, NULL}, {0}};
const OpDesc op_ReverseSequence = {"", "ReverseSequence", 2, 2, 1, 1, 0, parse_reverse, reverse_infer, NULL,
                                   reverse_kernels};

/* ==== Trilu: keep the upper (j - i >= k) or lower (j - i <= k) triangle of each matrix ==== */

typedef struct TriluParams {
    int64_t upper;
} TriluParams;

static crun_status parse_trilu(Node *n, Diag *d)
{
    TriluParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_int(n, "upper", 1, &p->upper, d) : d->status;
}

static crun_status trilu_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2, got %d", x->rank);
    if (c->n_in > 1 && c->in[1])
        NODE_CHECK(c, c->in[1]->dtype == CRUN_DTYPE_INT64 && tensor_numel(c->in[1]) == 1, "k must be an int64 scalar");
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

static crun_status trilu_run(KernelCtx *k)
{
    const TriluParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    int r = x->rank;
    int64_t m = x->dims[r - 2], n = x->dims[r - 1], batch = shape_numel(x->dims, r - 2);
    int64_t diag = k->n_in > 1 && k->in[1] ? tensor_get_int(k->in[1], 0) : 0;
    /* Beyond +-(m + n) every k gives the same result; clamping keeps i + k from overflowing. */
    diag = CRUN_MAX(-(m + n), CRUN_MIN(diag, m + n));
    size_t es = dtype_size(x->dtype);
    Elem zero = elem_zero(x->dtype);
    crun_status st = CRUN_OK;
    for (int64_t b = 0; b < batch && st == CRUN_OK; b++) {
        for (int64_t i = 0; i < m && st == CRUN_OK; i++) {
            size_t row = (size_t)((b * m + i) * n) * es;
            const char *src = (const char *)x->data + row;
            char *dst = (char *)y->data + row;
            /* Kept columns are [lo, hi). */
            int64_t lo = p->upper ? CRUN_MAX((int64_t)0, CRUN_MIN(i + diag, n)) : 0;
            int64_t hi = p->upper ? n : CRUN_MAX((int64_t)0, CRUN_MIN(i + diag + 1, n));
            st = elems_fill(dst, &zero, lo, x->dtype);
            if (st == CRUN_OK)
                st = elems_copy(dst + (size_t)lo * es, src + (size_t)lo * es, hi - lo, x->dtype);
            if (st == CRUN_OK)
                st = elems_fill(dst + (size_t)hi * es, &zero, n - hi, x->dtype);
        }
    }
    return st == CRUN_OK ? st : node_fail(k->node, k->d, st, "out of memory");
}

static const KernelVariant trilu_kernels[] = {{"trilu", ISA_SCALAR, NULL, NULL, trilu_run, NULL}, {0}};
const OpDesc op_Trilu = {"", "Trilu", 1, 2, 1, 1, 0, parse_trilu, trilu_infer, NULL, trilu_kernels};

/* ==== EyeLike: ones on diagonal k of a 2-D tensor, zeros elsewhere ==== */

typedef struct EyeParams {
    int64_t dtype; /* 0: the input's type */
    int64_t k;
} EyeParams;

static crun_status parse_eyelike(Node *n, Diag *d)
{
    EyeParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "dtype", 0, &p->dtype, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "k", 0, &p->k, d);
    if (st == CRUN_OK && p->dtype != 0 &&
        (!dtype_is_valid((int)p->dtype) || p->dtype == CRUN_DTYPE_STRING || p->dtype == CRUN_DTYPE_COMPLEX64 ||
         p->dtype == CRUN_DTYPE_COMPLEX128))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "dtype %lld is not supported", (long long)p->dtype);
    return st;
}

static crun_status eyelike_infer(InferCtx *c)
{
    const EyeParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->rank == 2, "input must be 2-D, got rank %d", x->rank);
    crun_dtype t = p->dtype ? (crun_dtype)p->dtype : x->dtype;
    NODE_CHECK(c, dtype_is_float(t) || dtype_is_int(t) || t == CRUN_DTYPE_BOOL, "type %s is not supported",
               dtype_name(t));
    out_set(c->out[0], t, 2, x->dims);
    return CRUN_OK;
}

static crun_status eyelike_run(KernelCtx *k)
{
    const EyeParams *p = k->params;
    Tensor *y = k->out[0];
    int64_t m = y->dims[0], n = y->dims[1];
    int64_t diag = CRUN_MAX(-m, CRUN_MIN(p->k, n)); /* beyond these no element is set */
    memset(y->data, 0, tensor_bytes(y));              /* the zero of every numeric type and bool */
    for (int64_t i = CRUN_MAX((int64_t)0, -diag); i < m && i + diag < n; i++)
        tensor_set_int(y, i * n + i + diag, 1);
    return CRUN_OK;
}

static const KernelVariant eyelike_kernels[] = {{"eyelike", ISA_SCALAR, NULL, NULL, eyelike_run, NULL}, {0}};
const OpDesc op_EyeLike = {"", "EyeLike", 1, 1, 1, 1, 0, parse_eyelike, eyelike_infer, NULL, eyelike_kernels};
