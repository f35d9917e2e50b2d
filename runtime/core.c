/* core.c - dtype traits, shape helpers, diagnostics and aligned memory. */
#include "runtime/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

crun_status diag_fail(Diag *d, crun_status status, const char *fmt, ...)
{
    if (d->status != CRUN_OK)
        return d->status;
    d->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
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

void *mem_alloc_aligned(size_t size)
{
    size = align_up(size ? size : 1, CRUN_ALIGN);
    return aligned_alloc(CRUN_ALIGN, size);
}

void *mem_calloc_aligned(size_t size)
{
    void *p = mem_alloc_aligned(size);
    if (p)
        memset(p, 0, align_up(size ? size : 1, CRUN_ALIGN));
    return p;
}

void mem_free(void *p) { free(p); }

char *str_dup(const char *s) { return str_ndup(s, strlen(s)); }

char *str_ndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}
