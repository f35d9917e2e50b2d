/* core.c - dtype traits, shape helpers, diagnostics and aligned memory. */
#include "runtime/core.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct DTypeTraits {
    const char *name;
    size_t size;
    bool is_float, is_int, is_signed;
} DTypeTraits;

static const DTypeTraits dtype_traits[] = {
    [CRUN_DTYPE_UNDEFINED] = {"undefined", 0, false, false, false},
    [CRUN_DTYPE_FLOAT] = {"float32", 4, true, false, true},
    [CRUN_DTYPE_UINT8] = {"uint8", 1, false, true, false},
    [CRUN_DTYPE_INT8] = {"int8", 1, false, true, true},
    [CRUN_DTYPE_UINT16] = {"uint16", 2, false, true, false},
    [CRUN_DTYPE_INT16] = {"int16", 2, false, true, true},
    [CRUN_DTYPE_INT32] = {"int32", 4, false, true, true},
    [CRUN_DTYPE_INT64] = {"int64", 8, false, true, true},
    [CRUN_DTYPE_STRING] = {"string", sizeof(char *), false, false, false},
    [CRUN_DTYPE_BOOL] = {"bool", 1, false, false, false},
    [CRUN_DTYPE_FLOAT16] = {"float16", 2, true, false, true},
    [CRUN_DTYPE_DOUBLE] = {"float64", 8, true, false, true},
    [CRUN_DTYPE_UINT32] = {"uint32", 4, false, true, false},
    [CRUN_DTYPE_UINT64] = {"uint64", 8, false, true, false},
    [CRUN_DTYPE_COMPLEX64] = {"complex64", 8, false, false, true},
    [CRUN_DTYPE_COMPLEX128] = {"complex128", 16, false, false, true},
    [CRUN_DTYPE_BFLOAT16] = {"bfloat16", 2, true, false, true},
};

bool dtype_is_valid(int t) { return t > 0 && t < (int)CRUN_ARRAY_LEN(dtype_traits); }
size_t dtype_size(crun_dtype t) { return dtype_is_valid((int)t) ? dtype_traits[t].size : 0; }
const char *dtype_name(crun_dtype t) { return dtype_is_valid((int)t) ? dtype_traits[t].name : "undefined"; }
bool dtype_is_float(crun_dtype t) { return dtype_is_valid((int)t) && dtype_traits[t].is_float; }
bool dtype_is_int(crun_dtype t) { return dtype_is_valid((int)t) && dtype_traits[t].is_int; }
bool dtype_is_signed(crun_dtype t) { return dtype_is_valid((int)t) && dtype_traits[t].is_signed; }

int64_t shape_numel(const int64_t *dims, int rank)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return -1;
        if (dims[i] == 0)
            n = 0;
        else if (n > CRUN_MAX_NUMEL / dims[i])
            return -1;
        else
            n *= dims[i];
    }
    /* A zero dim makes the product 0 even when other dims are huge, but those huge dims
     * must still be sane on their own. */
    for (int i = 0; i < rank; i++)
        if (dims[i] > CRUN_MAX_NUMEL)
            return -1;
    return n;
}

bool shape_equal(const int64_t *a, int ra, const int64_t *b, int rb)
{
    if (ra != rb)
        return false;
    for (int i = 0; i < ra; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

char *shape_str(const int64_t *dims, int rank, char *buf, size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

void shape_strides(const int64_t *dims, int rank, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

int axis_normalize(int64_t axis, int rank)
{
    if (axis < -rank || axis >= rank)
        return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}

/* ---- diagnostics ---- */

static _Thread_local bool cap_hit; /* the last allocation failed on the memory cap */
size_t mem_limit(void);

/* Says so when an out-of-memory failure came from the memory cap. */
static void note_cap(char *msg, size_t size, crun_status status)
{
    if (status != CRUN_ERR_OUT_OF_MEMORY || !cap_hit)
        return;
    cap_hit = false;
    size_t n = strlen(msg);
    snprintf(msg + n, size - n, " (crun's memory limit of %zu MiB was reached; see --max-memory)", mem_limit() >> 20);
}

crun_status diag_fail(Diag *d, crun_status status, const char *fmt, ...)
{
    if (d->status != CRUN_OK)
        return d->status;
    d->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    note_cap(d->msg, sizeof d->msg, status);
    return status;
}

void diag_prefix(Diag *d, const char *fmt, ...)
{
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), cap = sizeof d->msg;
    if (plen + 3 >= cap)
        return;
    size_t keep = CRUN_MIN(strlen(d->msg), cap - plen - 3);
    memmove(d->msg + plen + 2, d->msg, keep);
    memcpy(d->msg, prefix, plen);
    d->msg[plen] = ':';
    d->msg[plen + 1] = ' ';
    d->msg[plen + 2 + keep] = 0;
}

static _Thread_local char last_error[512] = "no error";

void diag_publish(const Diag *d)
{
    snprintf(last_error, sizeof last_error, "%s", d->status == CRUN_OK ? "no error" : d->msg);
}

crun_status error_set(crun_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    note_cap(last_error, sizeof last_error, status);
    return status;
}

const char *crun_last_error(void) { return last_error; }

const char *crun_status_name(crun_status s)
{
    switch (s) {
    case CRUN_OK: return "ok";
    case CRUN_ERR_INVALID_ARGUMENT: return "invalid argument";
    case CRUN_ERR_IO: return "i/o error";
    case CRUN_ERR_INVALID_MODEL: return "invalid model";
    case CRUN_ERR_UNSUPPORTED: return "unsupported";
    case CRUN_ERR_OUT_OF_MEMORY: return "out of memory";
    case CRUN_ERR_RUNTIME: return "runtime error";
    }
    return "unknown status";
}

const char *crun_dtype_name(crun_dtype t) { return dtype_name(t); }
size_t crun_dtype_size(crun_dtype t) { return dtype_size(t); }
const char *crun_version(void) { return CRUN_VERSION_STRING; }

/* ---- memory ---- */

/* Large buffers (tensor data, arenas, packed weights, unpacked model bytes) are counted
 * against one process-wide cap, checked before allocating, so a hostile model cannot make
 * crun take all the memory. Blocks must be freed with mem_free to be uncounted. */
static _Atomic size_t mem_in_use;
static _Atomic size_t mem_cap; /* 0: not decided yet */

static size_t default_cap(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t phys = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : (uint64_t)8 << 30;
    uint64_t cap = phys / 4 * 3; /* three quarters of the machine */
    /* A 32-bit process cannot address more than its size_t, whatever the machine has. */
    return cap > SIZE_MAX / 4 * 3 ? SIZE_MAX / 4 * 3 : (size_t)cap;
}

size_t mem_limit(void)
{
    size_t c = mem_cap;
    if (!c)
        mem_cap = c = default_cap();
    return c;
}

void crun_set_memory_limit(size_t bytes) { mem_cap = bytes ? bytes : default_cap(); }
size_t crun_memory_limit(void) { return mem_limit(); }
size_t crun_memory_in_use(void) { return mem_in_use; }

bool mem_reserve(size_t bytes)
{
    size_t cap = mem_limit(), cur = mem_in_use;
    do {
        if (bytes > cap || cur > cap - bytes) {
            cap_hit = true;
            return false;
        }
    } while (!atomic_compare_exchange_weak(&mem_in_use, &cur, cur + bytes));
    return true;
}

void mem_release(size_t bytes) { mem_in_use -= bytes; }

bool mem_cap_hit(void) { return cap_hit; }

void *mem_alloc_aligned(size_t size)
{
    size = align_up(size ? size : 1, CRUN_ALIGN);
    if (!mem_reserve(size))
        return NULL;
    void *p = heap_aligned(size);
    mem_release(size);
    if (p && !heap_in_region(p) && !mem_reserve(malloc_usable_size(p))) {
        free(p);
        return NULL;
    }
    return p;
}

void *mem_calloc_aligned(size_t size)
{
    void *p = mem_alloc_aligned(size);
    if (p)
        memset(p, 0, align_up(size ? size : 1, CRUN_ALIGN));
    return p;
}

void mem_free(void *p)
{
    if (p && !heap_in_region(p)) { /* a region's blocks are the caller's memory */
        mem_release(malloc_usable_size(p));
        free(p);
    }
}

static void merge_runs(uint8_t *src, uint8_t *dst, size_t n, size_t size, size_t width,
                       int (*cmp)(const void *, const void *))
{
    for (size_t lo = 0; lo < n; lo += 2 * width) {
        size_t mid = CRUN_MIN(lo + width, n), hi = CRUN_MIN(lo + 2 * width, n), i = lo, j = mid, k = lo;
        while (i < mid && j < hi)
            memcpy(dst + size * k++, src + size * (cmp(src + size * j, src + size * i) < 0 ? j++ : i++), size);
        memcpy(dst + size * k, src + size * i, size * (mid - i));
        k += mid - i;
        memcpy(dst + size * k, src + size * j, size * (hi - j));
    }
}

void sort_items(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    uint8_t *a = base, *tmp = n > 1 ? malloc(n * size) : NULL;
    if (!tmp) { /* insertion sort: no memory needed */
        uint8_t item[256];
        for (size_t i = 1; i < n && size <= sizeof item; i++) {
            memcpy(item, a + i * size, size);
            size_t j = i;
            for (; j > 0 && cmp(a + (j - 1) * size, item) > 0; j--)
                memcpy(a + j * size, a + (j - 1) * size, size);
            memcpy(a + j * size, item, size);
        }
        return;
    }
    uint8_t *src = a, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        merge_runs(src, dst, n, size, width, cmp);
        uint8_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * size);
    free(tmp);
}

char *str_dup(const char *s) { return str_ndup(s, strlen(s)); }

char *str_ndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}
