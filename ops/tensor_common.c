/* tensor_common.c - element copies, strided views and int-list inputs shared by the
 * tensor-manipulation ops (see tensor_common.h). */
#include "ops/tensor_common.h"

#include <string.h>

#include "runtime/sequence.h"
#include "runtime/threadpool.h"

crun_status elems_copy(void *dst, const void *src, int64_t n, crun_dtype t)
{
    if (n <= 0 || dst == src)
        return CRUN_OK;
    if (t == CRUN_DTYPE_STRING)
        return strings_copy(dst, src, n);
    memcpy(dst, src, (size_t)n * dtype_size(t));
    return CRUN_OK;
}

#define FILL(T) \
    do { \
        T v_; \
        memcpy(&v_, value, sizeof v_); \
        T *d_ = dst; \
        for (int64_t i = 0; i < n; i++) \
            d_[i] = v_; \
    } while (0)

crun_status elems_fill(void *dst, const void *value, int64_t n, crun_dtype t)
{
    if (t == CRUN_DTYPE_STRING) {
        char **slots = dst;
        for (int64_t i = 0; i < n; i++)
            if (strings_copy(slots + i, value, 1) != CRUN_OK)
                return CRUN_ERR_OUT_OF_MEMORY;
        return CRUN_OK;
    }
    switch (dtype_size(t)) {
    case 1: memset(dst, *(const uint8_t *)value, (size_t)CRUN_MAX(n, (int64_t)0)); break;
    case 2: FILL(uint16_t); break;
    case 4: FILL(uint32_t); break;
    case 8: FILL(uint64_t); break;
    default: {
        size_t es = dtype_size(t);
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + (size_t)i * es, value, es);
    }
    }
    return CRUN_OK;
}

/* ---- strided views ---- */

void view_simplify(StridedView *v)
{
    int r = 0;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] == 1)
            continue;
        if (r > 0 && v->stride[r - 1] == v->stride[i] * v->dims[i]) {
            v->dims[r - 1] *= v->dims[i];
            v->stride[r - 1] = v->stride[i];
        } else {
            v->dims[r] = v->dims[i];
            v->stride[r] = v->stride[i];
            r++;
        }
    }
    if (r == 0) {
        v->dims[0] = 1;
        v->stride[0] = 0;
        r = 1;
    }
    v->rank = r;
}

typedef struct ViewJob {
    const StridedView *v;
    const char *src;
    char *dst;
    crun_dtype dtype;
    size_t es;
    int64_t rows, rows_per_task;
    crun_status status; /* strings only (run on one thread) */
} ViewJob;

/* n elements of source stride st (in elements) into a dense row. */
#define STRIDED_ROW(T) \
    do { \
        const T *s_ = (const T *)src; \
        T *d_ = (T *)dst; \
        if (st == 0) { \
            T v_ = s_[0]; \
            for (int64_t i = 0; i < n; i++) \
                d_[i] = v_; \
        } else { \
            for (int64_t i = 0; i < n; i++) \
                d_[i] = s_[i * st]; \
        } \
    } while (0)

static void copy_row(ViewJob *j, const char *src, char *dst, int64_t n, int64_t st)
{
    if (j->dtype == CRUN_DTYPE_STRING) {
        for (int64_t i = 0; i < n && j->status == CRUN_OK; i++)
            j->status = elems_copy(dst + (size_t)i * j->es, src + (ptrdiff_t)(i * st) * (ptrdiff_t)j->es, 1, j->dtype);
        return;
    }
    if (st == 1) {
        memcpy(dst, src, (size_t)n * j->es);
        return;
    }
    switch (j->es) {
    case 1: STRIDED_ROW(uint8_t); break;
    case 2: STRIDED_ROW(uint16_t); break;
    case 4: STRIDED_ROW(uint32_t); break;
    case 8: STRIDED_ROW(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + (size_t)i * j->es, src + (ptrdiff_t)(i * st) * (ptrdiff_t)j->es, j->es);
    }
}

static void view_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    ViewJob *j = ctx;
    const StridedView *v = j->v;
    int last = v->rank - 1;
    int64_t n = v->dims[last], st = v->stride[last];
    int64_t r0 = t * j->rows_per_task, r1 = CRUN_MIN(j->rows, r0 + j->rows_per_task);
    /* Index of row r0 in the outer dims, then advanced like an odometer. */
    int64_t idx[VIEW_MAX_RANK] = {0}, off = 0, rem = r0;
    for (int d = last - 1; d >= 0; d--) {
        idx[d] = rem % v->dims[d];
        rem /= v->dims[d];
        off += idx[d] * v->stride[d];
    }
    for (int64_t r = r0; r < r1; r++) {
        copy_row(j, j->src + (ptrdiff_t)off * (ptrdiff_t)j->es, j->dst + (size_t)(r * n) * j->es, n, st);
        for (int d = last - 1; d >= 0; d--) {
            off += v->stride[d];
            if (++idx[d] < v->dims[d])
                break;
            off -= idx[d] * v->stride[d];
            idx[d] = 0;
        }
    }
}

crun_status view_copy(const StridedView *v, const void *src, void *dst, crun_dtype t, struct ThreadPool *pool)
{
    int64_t numel = shape_numel(v->dims, v->rank);
    if (numel <= 0)
        return CRUN_OK;
    ViewJob j = {.v = v, .src = src, .dst = dst, .dtype = t, .es = dtype_size(t), .status = CRUN_OK};
    int64_t n = v->dims[v->rank - 1];
    j.rows = numel / n;
    j.rows_per_task = CRUN_MAX((int64_t)1, 16384 / n);
    if (t == CRUN_DTYPE_STRING) {
        j.rows_per_task = j.rows;
        pool = NULL;
    }
    pool_for(pool, (j.rows + j.rows_per_task - 1) / j.rows_per_task, view_task, &j);
    return j.status;
}

/* ---- inputs ---- */

crun_status input_ints(const Node *n, Diag *d, const Tensor *t, const char *what, int64_t *out, int max,
                       int *count, bool *unknown)
{
    *count = -1;
    if (!t)
        return CRUN_OK;
    if ((t->dtype != CRUN_DTYPE_INT64 && t->dtype != CRUN_DTYPE_INT32) || t->rank > 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'%s' must be a 1-D int64 tensor", what);
    int64_t len = tensor_numel(t);
    if (len > max)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'%s' has %lld values, at most %d allowed", what,
                         (long long)len, max);
    if (!t->data && len > 0) {
        *unknown = true;
        return CRUN_OK;
    }
    for (int64_t i = 0; i < len; i++)
        out[i] = tensor_get_int(t, i);
    *count = (int)len;
    return CRUN_OK;
}

void transpose_f32(const float *src, float *dst, int64_t rows, int64_t cols)
{
    for (int64_t c0 = 0; c0 < cols; c0 += 16)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = c0; c < c0 + 16 && c < cols; c++)
                dst[c * rows + r] = src[r * cols + c];
}
