/* onnx_tensor.c - TensorProto to owned tensor data, with every size checked before any
 * allocation, and external data confined to the model's folder. */
#include "loaders/onnx_tensor.h"

#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *nz(const char *s) { return s ? s : ""; }

static const char *external_key(const Onnx__TensorProto *tp, const char *key)
{
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (e && e->key && strcmp(e->key, key) == 0)
            return nz(e->value);
    }
    return NULL;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* A relative path whose components never climb out ("..") and are never empty tricks. */
static bool path_is_confined(const char *loc)
{
    if (!*loc || loc[0] == '/')
        return false;
    const char *p = loc;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return false;
        if (!slash)
            break;
        p = slash + 1;
    }
    return true;
}

static crun_status read_external(const Onnx__TensorProto *tp, const char *dir, const char *what, void *dst,
                                 size_t bytes, Diag *d)
{
    const char *loc = external_key(tp, "location");
    if (!dir)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL,
                         "%s uses external data, which needs the model to be loaded from a file", what);
    if (!loc)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: external data without a 'location'", what);
    if (!path_is_confined(loc))
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: external data path '%s' leaves the model's folder", what,
                         loc);
    uint64_t offset = 0, length = bytes;
    const char *s_off = external_key(tp, "offset"), *s_len = external_key(tp, "length");
    if ((s_off && !parse_u64(s_off, &offset)) || (s_len && !parse_u64(s_len, &length)))
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: bad external data offset or length", what);
    if (length != bytes)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: external data length %llu, but its dims need %zu bytes",
                         what, (unsigned long long)length, bytes);
    char path[PATH_MAX], real_dir[PATH_MAX], real_path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, loc) >= sizeof path)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: external data path too long", what);
    if (!realpath(dir, real_dir) || !realpath(path, real_path))
        return diag_fail(d, CRUN_ERR_IO, "%s: cannot open external data file '%s': %s", what, path, strerror(errno));
    size_t n = strlen(real_dir);
    if (strncmp(real_path, real_dir, n) != 0 || real_path[n] != '/')
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: external data path '%s' leaves the model's folder", what,
                         loc);
    FILE *f = fopen(real_path, "rb");
    if (!f)
        return diag_fail(d, CRUN_ERR_IO, "%s: cannot open external data file '%s': %s", what, path, strerror(errno));
    struct stat sb;
    crun_status st = CRUN_OK;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
        st = diag_fail(d, CRUN_ERR_IO, "%s: '%s' is not a regular file", what, path);
    else if (offset > (uint64_t)sb.st_size || bytes > (uint64_t)sb.st_size - offset)
        st = diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: external data file '%s' has %lld bytes, needs %llu", what, path,
                       (long long)sb.st_size, (unsigned long long)(offset + bytes));
    else if (fseeko(f, (off_t)offset, SEEK_SET) != 0 || fread(dst, 1, bytes, f) != bytes)
        st = diag_fail(d, CRUN_ERR_IO, "%s: cannot read external data file '%s'", what, path);
    fclose(f);
    return st;
}

/* Elements carried by the typed field that matches dtype (0 if that field is empty). */
static size_t typed_count(const Onnx__TensorProto *tp, crun_dtype dt)
{
    switch (dt) {
    case CRUN_DTYPE_FLOAT: return tp->n_float_data;
    case CRUN_DTYPE_COMPLEX64: return tp->n_float_data / 2;
    case CRUN_DTYPE_DOUBLE: return tp->n_double_data;
    case CRUN_DTYPE_COMPLEX128: return tp->n_double_data / 2;
    case CRUN_DTYPE_INT64: return tp->n_int64_data;
    case CRUN_DTYPE_UINT32:
    case CRUN_DTYPE_UINT64: return tp->n_uint64_data;
    case CRUN_DTYPE_STRING: return tp->n_string_data;
    default: return tp->n_int32_data;
    }
}

static void copy_typed(const Onnx__TensorProto *tp, crun_dtype dt, void *dst, size_t n)
{
    if (n == 0)
        return;
    switch (dt) {
    case CRUN_DTYPE_FLOAT: memcpy(dst, tp->float_data, n * 4); return;
    case CRUN_DTYPE_COMPLEX64: memcpy(dst, tp->float_data, n * 8); return;
    case CRUN_DTYPE_DOUBLE: memcpy(dst, tp->double_data, n * 8); return;
    case CRUN_DTYPE_COMPLEX128: memcpy(dst, tp->double_data, n * 16); return;
    case CRUN_DTYPE_INT64: memcpy(dst, tp->int64_data, n * 8); return;
    case CRUN_DTYPE_UINT64: memcpy(dst, tp->uint64_data, n * 8); return;
    case CRUN_DTYPE_UINT32:
        for (size_t i = 0; i < n; i++)
            ((uint32_t *)dst)[i] = (uint32_t)tp->uint64_data[i];
        return;
    case CRUN_DTYPE_INT32: memcpy(dst, tp->int32_data, n * 4); return;
    case CRUN_DTYPE_INT16:
    case CRUN_DTYPE_UINT16:
    case CRUN_DTYPE_FLOAT16:
    case CRUN_DTYPE_BFLOAT16:
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i];
        return;
    case CRUN_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = tp->int32_data[i] != 0;
        return;
    case CRUN_DTYPE_INT8:
    case CRUN_DTYPE_UINT8:
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = (uint8_t)tp->int32_data[i];
        return;
    default: return;
    }
}

static crun_status load_strings(const Onnx__TensorProto *tp, size_t n, Tensor *out, const char *what, Diag *d)
{
    char **s = mem_calloc_aligned(n * sizeof *s);
    if (!s)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    for (size_t i = 0; i < n; i++) {
        s[i] = str_ndup((const char *)tp->string_data[i].data, tp->string_data[i].len);
        if (!s[i]) {
            tensor_data_free(CRUN_DTYPE_STRING, s, (int64_t)n);
            return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
        }
    }
    out->data = s;
    return CRUN_OK;
}

/* Checks type, dims and stored size against each other; fills out's type and shape. */
static crun_status check_header(const Onnx__TensorProto *tp, const char *what, Tensor *out, bool *external,
                                Diag *d)
{
    memset(out, 0, sizeof *out);
    if (!tp->has_data_type || !dtype_is_valid(tp->data_type))
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s has an invalid data type %d", what, (int)tp->data_type);
    crun_dtype dt = (crun_dtype)tp->data_type;
    if (tp->n_dims > CRUN_MAX_RANK)
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "%s has rank %zu, crun supports at most %d", what, tp->n_dims,
                         CRUN_MAX_RANK);
    if (tp->segment)
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "%s is a segmented tensor, which crun does not support", what);
    out->dtype = dt;
    out->rank = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0)
            return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s has negative dim %lld", what, (long long)tp->dims[i]);
        out->dims[i] = tp->dims[i];
    }
    int64_t numel = shape_numel(out->dims, out->rank);
    if (numel < 0)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: dims are too large (element count overflows)", what);
    size_t n = (size_t)numel, bytes = n * dtype_size(dt);
    *external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (dt == CRUN_DTYPE_STRING) {
        if (*external || tp->has_raw_data)
            return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s: string tensors must use string_data", what);
        if (tp->n_string_data != n)
            return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s has %zu strings, its dims need %zu", what,
                             tp->n_string_data, n);
        return CRUN_OK;
    }
    char sh[128];
    if (!*external && tp->has_raw_data && tp->raw_data.len != bytes)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s has %zu bytes of raw data, its dims %s need %zu", what,
                         tp->raw_data.len, shape_str(out->dims, out->rank, sh, sizeof sh), bytes);
    if (!*external && !tp->has_raw_data && typed_count(tp, dt) != n)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "%s has %zu values, its dims need %zu", what, typed_count(tp, dt),
                         n);
    return CRUN_OK;
}

crun_status onnx_tensor_load(const Onnx__TensorProto *tp, const char *dir, const char *what, Tensor *out, Diag *d)
{
    bool external = false;
    crun_status st = check_header(tp, what, out, &external, d);
    if (st != CRUN_OK)
        return st;
    size_t n = (size_t)tensor_numel(out), bytes = tensor_bytes(out);
    if (out->dtype == CRUN_DTYPE_STRING)
        return load_strings(tp, n, out, what, d);
    /* Every byte is written below, so the buffer needs no clearing. */
    void *data = mem_alloc_aligned(bytes);
    if (!data)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", what, bytes);
    if (external)
        st = read_external(tp, dir, what, data, bytes, d);
    else if (tp->has_raw_data && bytes)
        memcpy(data, tp->raw_data.data, bytes);
    else
        copy_typed(tp, out->dtype, data, n);
    if (st != CRUN_OK) {
        mem_free(data);
        return st;
    }
    /* Booleans stored as raw bytes may hold any byte; kernels expect 0 or 1. */
    if (out->dtype == CRUN_DTYPE_BOOL)
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)data)[i] = ((uint8_t *)data)[i] != 0;
    out->data = data;
    return CRUN_OK;
}

crun_status onnx_tensor_borrow(Onnx__TensorProto *tp, const char *dir, const char *what, Tensor *out,
                               bool *borrowed, Diag *d)
{
    bool external = false;
    *borrowed = false;
    crun_status st = check_header(tp, what, out, &external, d);
    if (st != CRUN_OK)
        return st;
    /* Raw bytes protobuf-c already unpacked are used where they are (bools excepted: they
     * must be normalised to 0/1, so they get a copy). */
    if (external || !tp->has_raw_data || !tp->raw_data.len || out->dtype == CRUN_DTYPE_BOOL)
        return onnx_tensor_load(tp, dir, what, out, d);
    out->data = tp->raw_data.data;
    *borrowed = true;
    return CRUN_OK;
}

/* ---- protobuf-c's memory, counted against crun's cap ---- */

static void *pb_alloc(void *data, size_t size)
{
    if (!mem_reserve(size))
        return NULL;
    void *p = malloc(size);
    mem_release(size);
    if (p && !mem_reserve(malloc_usable_size(p))) {
        free(p);
        return NULL;
    }
    return p;
}

static void pb_free(void *data, void *p)
{
    if (p) {
        mem_release(malloc_usable_size(p));
        free(p);
    }
}

ProtobufCAllocator onnx_allocator = {pb_alloc, pb_free, NULL};
