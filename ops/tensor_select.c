/* tensor_select.c - ops that select elements by their values: NonZero, Compress, Unique.
 * Their output shapes depend on the data, so infer counts the selection (and asks for the
 * data, needs_data, when the input is not a constant). */
#include <stdlib.h>
#include <string.h>

#include "ops/dtype_loops.h"
#include "ops/tensor_common.h"

/* ==== NonZero: the indices of nonzero elements, one row per axis ==== */

/* Stores the flat index of each nonzero element in out (when not NULL); returns how many.
 * Floats compare with 0 (so -0.0 is zero and NaN is not); half types test the bits
 * without the sign; integers and bool any bit; strings are nonzero when not empty. */
#define DEF_NZ(name, T, NZ) \
    static int64_t name(const void *data, int64_t n, int64_t *out) \
    { \
        const T *x = data; \
        int64_t k = 0; \
        for (int64_t i = 0; i < n; i++) \
            if (NZ) { \
                if (out) \
                    out[k] = i; \
                k++; \
            } \
        return k; \
    }
DEF_NZ(nz_f32, float, x[i] != 0)
DEF_NZ(nz_f64, double, x[i] != 0)
DEF_NZ(nz_half, uint16_t, (x[i] & 0x7fff) != 0)
DEF_NZ(nz_u8, uint8_t, x[i] != 0)
DEF_NZ(nz_u16, uint16_t, x[i] != 0)
DEF_NZ(nz_u32, uint32_t, x[i] != 0)
DEF_NZ(nz_u64, uint64_t, x[i] != 0)
typedef char *StrSlot;
DEF_NZ(nz_str, StrSlot, x[i] && x[i][0])

typedef int64_t (*NzScan)(const void *data, int64_t n, int64_t *out);

static NzScan nz_scan_for(crun_dtype t)
{
    switch (t) {
    case CRUN_DTYPE_FLOAT: return nz_f32;
    case CRUN_DTYPE_DOUBLE: return nz_f64;
    case CRUN_DTYPE_FLOAT16:
    case CRUN_DTYPE_BFLOAT16: return nz_half;
    case CRUN_DTYPE_STRING: return nz_str;
    case CRUN_DTYPE_COMPLEX64:
    case CRUN_DTYPE_COMPLEX128: return NULL;
    default: break;
    }
    switch (dtype_size(t)) {
    case 1: return nz_u8;
    case 2: return nz_u16;
    case 4: return nz_u32;
    case 8: return nz_u64;
    default: return NULL;
    }
}

static crun_status nonzero_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NzScan scan = nz_scan_for(x->dtype);
    NODE_CHECK(c, scan, "type %s is not supported", dtype_name(x->dtype));
    if (!x->data && tensor_numel(x) > 0) {
        c->needs_data = true;
        return CRUN_OK;
    }
    /* A scalar counts as a 1-D tensor of one element (as numpy.nonzero does). */
    int64_t dims[2] = {CRUN_MAX(x->rank, 1), scan(x->data, tensor_numel(x), NULL)};
    out_set(c->out[0], CRUN_DTYPE_INT64, 2, dims);
    return CRUN_OK;
}

static crun_status nonzero_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    int r = (int)y->dims[0];
    int64_t nnz = y->dims[1], *out = y->data;
    if (nnz == 0)
        return CRUN_OK;
    /* Flat indices go to the last row, then each becomes its coordinates (read first,
     * so overwriting the last row is safe). */
    int64_t *flat = out + (size_t)(r - 1) * (size_t)nnz;
    nz_scan_for(x->dtype)(x->data, tensor_numel(x), flat);
    for (int64_t j = 0; j < nnz; j++) {
        int64_t f = flat[j];
        for (int a = r - 1; a >= 0; a--) {
            int64_t dim = x->rank ? x->dims[a] : 1;
            out[(size_t)a * (size_t)nnz + (size_t)j] = f % dim;
            f /= dim;
        }
    }
    return CRUN_OK;
}

static const KernelVariant nonzero_kernels[] = {{"nonzero", ISA_SCALAR, NULL, NULL, nonzero_run, NULL}, {0}};
const OpDesc op_NonZero = {"", "NonZero", 1, 1, 1, 1, 0, NULL, nonzero_infer, NULL, nonzero_kernels};

/* ==== Compress: keep the slices along axis (or the flattened elements) whose condition
 * is true; a shorter condition drops the slices it does not reach (numpy.compress) ==== */

typedef struct CompressParams {
    bool has_axis;
    int64_t axis;
} CompressParams;

static crun_status parse_compress(Node *n, Diag *d)
{
    CompressParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->has_axis = node_attr(n, "axis") != NULL;
    return attr_get_int(n, "axis", 0, &p->axis, d);
}

/* The selected axis (-1: flattened) and its length. */
static int compress_axis(const CompressParams *p, const Tensor *x, int64_t *len)
{
    if (!p->has_axis) {
        *len = tensor_numel(x);
        return -1;
    }
    int a = axis_normalize(p->axis, x->rank);
    *len = a >= 0 ? x->dims[a] : 0;
    return a;
}

static crun_status compress_infer(InferCtx *c)
{
    const CompressParams *p = c->params;
    const Tensor *x = c->in[0], *cond = c->in[1];
    int64_t len;
    int axis = compress_axis(p, x, &len);
    NODE_CHECK(c, !p->has_axis || axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    NODE_CHECK(c, cond->dtype == CRUN_DTYPE_BOOL && cond->rank == 1, "condition must be a 1-D bool tensor");
    if (!cond->data && tensor_numel(cond) > 0) {
        c->needs_data = true;
        return CRUN_OK;
    }
    const uint8_t *cv = cond->data;
    int64_t kept = 0;
    for (int64_t i = 0; i < cond->dims[0]; i++) {
        DATA_CHECK(c, !cv[i] || i < len, "condition selects index %lld, the axis has %lld", (long long)i,
                   (long long)len);
        kept += cv[i] != 0;
    }
    if (axis < 0) {
        out_set(c->out[0], x->dtype, 1, &kept);
    } else {
        int64_t dims[CRUN_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = kept;
        out_set(c->out[0], x->dtype, x->rank, dims);
    }
    return CRUN_OK;
}

static crun_status compress_run(KernelCtx *k)
{
    const CompressParams *p = k->params;
    const Tensor *x = k->in[0], *cond = k->in[1];
    int64_t len;
    int axis = compress_axis(p, x, &len);
    int64_t outer = axis < 0 ? 1 : shape_numel(x->dims, axis);
    int64_t inner = axis < 0 ? 1 : shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    int64_t n = CRUN_MIN(len, cond->dims[0]);
    const uint8_t *cv = cond->data;
    size_t es = dtype_size(x->dtype);
    char *dst = k->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < n; i++) {
            if (!cv[i])
                continue;
            const char *src = (const char *)x->data + (size_t)((o * len + i) * inner) * es;
            if (elems_copy(dst, src, inner, x->dtype) != CRUN_OK)
                return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
            dst += (size_t)inner * es;
        }
    return CRUN_OK;
}

static const KernelVariant compress_kernels[] = {{"compress", ISA_SCALAR, NULL, NULL, compress_run, NULL}, {0}};
const OpDesc op_Compress = {"", "Compress", 2, 2, 1, 1, 0, parse_compress, compress_infer, NULL, compress_kernels};

/* ==== Unique: distinct elements (or slices along axis) with the index of each one's first
 * occurrence, the inverse map and the counts; sorted ascending or in order of first
 * occurrence. Slices compare lexicographically, as numpy.unique(axis=) does. ==== */

typedef struct UniqueParams {
    bool has_axis;
    int64_t axis;
    int64_t sorted;
} UniqueParams;

static crun_status parse_unique(Node *n, Diag *d)
{
    UniqueParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->has_axis = node_attr(n, "axis") != NULL;
    crun_status st = attr_get_int(n, "axis", 0, &p->axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "sorted", 1, &p->sorted, d);
    return st;
}

/* Three-way compare of two elements. Floats order NaN after everything and equal to
 * itself, so that sorting is a total order and NaNs collapse into one. */
typedef int (*ElemCmp)(const void *a, const void *b);

#define CMP_INT(x, y) ((x) > (y)) - ((x) < (y))
#define CMP_FLOAT(x, y) ((x) != (x) ? ((y) != (y) ? 0 : 1) : (y) != (y) ? -1 : CMP_INT(x, y))
#define DEF_CMP(sfx, TT, CC, UU, LD, ST, KIND) \
    static int cmp_##sfx(const void *a, const void *b) \
    { \
        TT ta, tb; \
        memcpy(&ta, a, sizeof ta); \
        memcpy(&tb, b, sizeof tb); \
        CC x = LD(ta), y = LD(tb); \
        return KIND(x, y); \
    }
FOR_FLOAT_TYPES(DEF_CMP, CMP_FLOAT)
FOR_INT_TYPES(DEF_CMP, CMP_INT)

static int cmp_bool(const void *a, const void *b) { return CMP_INT(*(const uint8_t *)a, *(const uint8_t *)b); }
static int cmp_str(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return strcmp(x ? x : "", y ? y : "");
}

#define CMP_ENTRY(sfx, T, C, U, LD, ST, unused) [DT_##sfx] = cmp_##sfx,
static const ElemCmp cmp_table[DTYPE_SLOTS] = {FOR_NUMERIC_TYPES(CMP_ENTRY, 0)[CRUN_DTYPE_BOOL] = cmp_bool,
                                               [CRUN_DTYPE_STRING] = cmp_str};

/* The input seen as `n` slices: slice k is the elements (o, k, i), o < outer, i < inner. */
typedef struct Slices {
    const char *data;
    size_t es;
    int64_t outer, n, inner;
    ElemCmp cmp;
} Slices;

static void slices_init(Slices *s, const UniqueParams *p, const Tensor *x)
{
    int axis = p->has_axis ? axis_normalize(p->axis, x->rank) : -1;
    s->data = x->data;
    s->es = dtype_size(x->dtype);
    s->cmp = cmp_table[x->dtype];
    s->outer = axis < 0 ? 1 : shape_numel(x->dims, axis);
    s->n = axis < 0 ? tensor_numel(x) : x->dims[axis];
    s->inner = axis < 0 ? 1 : shape_numel(x->dims + axis + 1, x->rank - axis - 1);
}

static int slice_cmp(const Slices *s, int64_t a, int64_t b)
{
    for (int64_t o = 0; o < s->outer; o++) {
        const char *pa = s->data + (size_t)((o * s->n + a) * s->inner) * s->es;
        const char *pb = s->data + (size_t)((o * s->n + b) * s->inner) * s->es;
        for (int64_t i = 0; i < s->inner; i++) {
            int c = s->cmp(pa + (size_t)i * s->es, pb + (size_t)i * s->es);
            if (c)
                return c;
        }
    }
    return 0;
}

/* Stable bottom-up merge sort of the slice numbers 0..n-1 (tmp holds n more): equal
 * slices end up adjacent, in order of occurrence. */
static void sort_slices(const Slices *s, int64_t *idx, int64_t *tmp)
{
    int64_t n = s->n;
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = CRUN_MIN(lo + w, n), hi = CRUN_MIN(lo + 2 * w, n), i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = slice_cmp(s, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
    }
}

static int64_t count_groups(const Slices *s, const int64_t *idx)
{
    int64_t groups = s->n > 0;
    for (int64_t j = 1; j < s->n; j++)
        groups += slice_cmp(s, idx[j - 1], idx[j]) != 0;
    return groups;
}

static crun_status unique_infer(InferCtx *c)
{
    const UniqueParams *p = c->params;
    const Tensor *x = c->in[0];
    int axis = p->has_axis ? axis_normalize(p->axis, x->rank) : -1;
    NODE_CHECK(c, !p->has_axis || axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    NODE_CHECK(c, x->dtype < DTYPE_SLOTS && cmp_table[x->dtype], "type %s is not supported", dtype_name(x->dtype));
    if (!x->data && tensor_numel(x) > 0) {
        c->needs_data = true;
        return CRUN_OK;
    }
    Slices s;
    slices_init(&s, p, x);
    int64_t *idx = malloc((size_t)CRUN_MAX(s.n, (int64_t)1) * 2 * sizeof *idx);
    if (!idx)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    sort_slices(&s, idx, idx + s.n);
    int64_t u = count_groups(&s, idx);
    free(idx);
    int64_t dims[CRUN_MAX_RANK];
    if (axis < 0) {
        out_set(c->out[0], x->dtype, 1, &u);
    } else {
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = u;
        out_set(c->out[0], x->dtype, x->rank, dims);
    }
    for (int i = 1; i < c->n_out; i++)
        if (c->out[i])
            out_set(c->out[i], CRUN_DTYPE_INT64, 1, i == 2 ? &s.n : &u);
    return CRUN_OK;
}

static crun_status unique_prepare(PrepCtx *c)
{
    Slices s;
    slices_init(&s, c->params, c->in[0]);
    c->ws_bytes = (size_t)(4 * s.n + 1) * sizeof(int64_t);
    return CRUN_OK;
}

static crun_status unique_run(KernelCtx *k)
{
    const UniqueParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    Slices s;
    slices_init(&s, p, x);
    int64_t n = s.n, u = y->rank ? y->dims[p->has_axis ? axis_normalize(p->axis, x->rank) : 0] : 0;
    int64_t *idx = k->ws, *tmp = idx + n, *group = tmp + n, *pos = group + n;
    sort_slices(&s, idx, tmp);
    /* group[j]: group of slice j; a group's first slice is its first occurrence. */
    int64_t g = -1, *first = tmp; /* tmp is free again: first[g] */
    for (int64_t j = 0; j < n; j++) {
        if (j == 0 || slice_cmp(&s, idx[j - 1], idx[j]) != 0)
            first[++g] = idx[j];
        group[idx[j]] = g;
    }
    /* pos[g]: output position of group g, sorted or in order of first occurrence. */
    if (p->sorted) {
        for (int64_t i = 0; i < u; i++)
            pos[i] = i;
    } else {
        int64_t next = 0;
        for (int64_t j = 0; j < n; j++)
            if (first[group[j]] == j)
                pos[group[j]] = next++;
    }
    int64_t *ind = k->n_out > 1 && k->out[1] ? k->out[1]->data : NULL;
    int64_t *inv = k->n_out > 2 && k->out[2] ? k->out[2]->data : NULL;
    int64_t *cnt = k->n_out > 3 && k->out[3] ? k->out[3]->data : NULL;
    if (cnt)
        memset(cnt, 0, (size_t)u * sizeof *cnt);
    for (int64_t j = 0; j < n; j++) {
        if (inv)
            inv[j] = pos[group[j]];
        if (cnt)
            cnt[pos[group[j]]]++;
    }
    for (int64_t gi = 0; gi < u; gi++) {
        if (ind)
            ind[pos[gi]] = first[gi];
        for (int64_t o = 0; o < s.outer; o++) {
            size_t src = (size_t)((o * n + first[gi]) * s.inner) * s.es;
            size_t dst = (size_t)((o * u + pos[gi]) * s.inner) * s.es;
            if (elems_copy((char *)y->data + dst, (const char *)x->data + src, s.inner, x->dtype) != CRUN_OK)
                return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return CRUN_OK;
}

static const KernelVariant unique_kernels[] = {{"unique", ISA_SCALAR, NULL, unique_prepare, unique_run, NULL}, {0}};
const OpDesc op_Unique = {"", "Unique", 1, 1, 1, 4, 0, parse_unique, unique_infer, NULL, unique_kernels};
