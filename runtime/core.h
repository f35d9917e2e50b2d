/* core.h - internal types shared by every stage: tensors, dtypes, diagnostics. */
#ifndef CRUN_CORE_H
#define CRUN_CORE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crun.h"
#include "runtime/heap.h"

/* The library allocates through heap.h, so that a caller's buffer can serve a static model
 * (heap.c itself calls the C library's functions). <stdlib.h> and <string.h> are included
 * before the names are mapped, so the C library's own declarations stay as they are. */
#ifndef CRUN_HEAP_IMPL
#include <stdlib.h>
#include <string.h>
#define malloc(n) heap_malloc(n)
#define calloc(n, size) heap_calloc(n, size)
#define realloc(p, n) heap_realloc(p, n)
#define free(p) heap_free(p)
#endif

#define CRUN_ALIGN 64
#define CRUN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CRUN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CRUN_MAX(a, b) ((a) > (b) ? (a) : (b))
#if defined(__GNUC__)
#define CRUN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CRUN_PRINTF(f, a)
#endif
/* Cold code in files built for speed (reference and other-dtype paths, shape functions):
 * built for size with gcc, since the binary has a budget (clang has no per-function
 * optimisation level). */
#if defined(__GNUC__) && !defined(__clang__)
#define CRUN_FOR_SIZE __attribute__((optimize("Os")))
#else
#define CRUN_FOR_SIZE
#endif

/* Largest element count of one tensor; dims whose product exceeds it are rejected. Kept
 * well below SIZE_MAX so that count * element size never overflows. */
#define CRUN_MAX_NUMEL ((int64_t)1 << 40)

/* What a value holds: a tensor, or a sequence of tensors (ONNX sequence types). */
typedef enum ValueKind { VALUE_TENSOR = 0, VALUE_SEQUENCE } ValueKind;

struct Sequence;

/* A value as kernels see it: a typed, dense, row-major tensor view, or (kind
 * VALUE_SEQUENCE) a sequence of tensors whose element type is dtype. An ONNX optional
 * value is either of these, or `none`. data and seq are never owned by the view. */
typedef struct Tensor {
    crun_dtype dtype;
    int rank;
    int64_t dims[CRUN_MAX_RANK];
    void *data;
    ValueKind kind;
    bool none;
    struct Sequence *seq;
} Tensor;

/* ---- dtypes ---- */
size_t dtype_size(crun_dtype t);
const char *dtype_name(crun_dtype t);
bool dtype_is_valid(int t);
bool dtype_is_float(crun_dtype t); /* float, double, float16, bfloat16 */
bool dtype_is_int(crun_dtype t);   /* signed or unsigned integer types (not bool) */
bool dtype_is_signed(crun_dtype t);

/* ---- shapes ---- */
/* Product of dims, or -1 if a dim is negative or the product exceeds CRUN_MAX_NUMEL. */
int64_t shape_numel(const int64_t *dims, int rank);
static inline int64_t tensor_numel(const Tensor *t) { return shape_numel(t->dims, t->rank); }
static inline size_t tensor_bytes(const Tensor *t) { return (size_t)tensor_numel(t) * dtype_size(t->dtype); }
bool shape_equal(const int64_t *a, int ra, const int64_t *b, int rb);
/* Writes "[1,3,224,224]" into buf; returns buf. */
char *shape_str(const int64_t *dims, int rank, char *buf, size_t size);
/* Row-major strides in elements. */
void shape_strides(const int64_t *dims, int rank, int64_t *strides);
/* Normalises an axis in [-rank, rank) to [0, rank); -1 if out of range. */
int axis_normalize(int64_t axis, int rank);

/* ---- diagnostics ---- */
typedef struct Diag {
    crun_status status;
    char msg[512];
} Diag;

/* Records the first failure (later ones are ignored) and returns status. */
crun_status diag_fail(Diag *d, crun_status status, const char *fmt, ...) CRUN_PRINTF(3, 4);
/* Prefixes the existing message with "prefix: " (used to add file or node context). */
void diag_prefix(Diag *d, const char *fmt, ...) CRUN_PRINTF(2, 3);
/* Thread-local last-error buffer behind crun_last_error. */
void diag_publish(const Diag *d);
crun_status error_set(crun_status status, const char *fmt, ...) CRUN_PRINTF(2, 3);

/* ---- memory ---- */
/* 64-byte aligned allocation counted against the memory cap (crun_set_memory_limit): NULL
 * when out of memory or over the cap; size 0 gives a valid minimal block. Free ONLY with
 * mem_free (free() would leave it counted). */
void *mem_alloc_aligned(size_t size);
void *mem_calloc_aligned(size_t size);
void mem_free(void *p);
/* Counts bytes against the cap without allocating (for memory crun gets elsewhere, such as
 * protobuf-c's); false when that would exceed the cap. */
bool mem_reserve(size_t bytes);
void mem_release(size_t bytes);
size_t mem_limit(void);
/* Whether the last failed allocation on this thread failed on the cap. */
bool mem_cap_hit(void);
char *str_dup(const char *s);
char *str_ndup(const char *s, size_t n);

/* Float to int64 without undefined behaviour: NaN gives 0, out of range saturates. */
static inline int64_t double_to_i64_sat(double v)
{
    if (v != v)
        return 0;
    if (v >= 9223372036854775807.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

static inline size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Milliseconds on the monotonic clock (for timing; never in a kernel). */
static inline double clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Stable sort of n items of size bytes (a merge sort through heap.h: qsort may take
 * memory from the C heap behind crun's back, which a static model must not). */
void sort_items(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif
