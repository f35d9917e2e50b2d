/* tensor_file.c - .npy (NumPy format 1.0-3.0, little-endian, C order) and TensorProto .pb. */
#include "loaders/tensor_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loaders/onnx_tensor.h"
#include "onnx.pb-c.h"

/* Tensor files bigger than this are refused before reading. */
#define MAX_TENSOR_FILE ((uint64_t)4 << 30) /* 64-bit: (size_t)4 << 30 is 0 on 32-bit hosts */

crun_status file_read_all(const char *path, void **buf, size_t *size, Diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return diag_fail(d, CRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_TENSOR_FILE ||
        (uint64_t)sb.st_size > SIZE_MAX / 2) {
        fclose(f);
        return diag_fail(d, CRUN_ERR_IO, "%s: not a regular file of a sane size", path);
    }
    *size = (size_t)sb.st_size;
    *buf = malloc(*size ? *size : 1);
    if (!*buf) {
        fclose(f);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    size_t got = fread(*buf, 1, *size, f);
    fclose(f);
    if (got != *size) {
        free(*buf);
        return diag_fail(d, CRUN_ERR_IO, "%s: read error", path);
    }
    return CRUN_OK;
}

/* ---- .npy ---- */

typedef struct NpyType {
    const char *descr;
    crun_dtype dtype;
} NpyType;

static const NpyType npy_types[] = {
    {"f4", CRUN_DTYPE_FLOAT},  {"f8", CRUN_DTYPE_DOUBLE}, {"f2", CRUN_DTYPE_FLOAT16}, {"i1", CRUN_DTYPE_INT8},
    {"u1", CRUN_DTYPE_UINT8},  {"i2", CRUN_DTYPE_INT16},  {"u2", CRUN_DTYPE_UINT16},  {"i4", CRUN_DTYPE_INT32},
    {"u4", CRUN_DTYPE_UINT32}, {"i8", CRUN_DTYPE_INT64},  {"u8", CRUN_DTYPE_UINT64},  {"b1", CRUN_DTYPE_BOOL},
};

/* Finds 'key': in the header dict and returns a pointer just past the colon. */
static const char *npy_key(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p)
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

static crun_status npy_header(const char *h, Tensor *out, Diag *d)
{
    const char *p = npy_key(h, "descr");
    if (!p || *p != '\'')
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: header has no 'descr'");
    /* The descr string: a byte-order character and a type code, e.g. '<f4'. */
    const char *end = strchr(p + 1, '\'');
    size_t len = end ? (size_t)(end - p - 1) : 0;
    if (len != 3)
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "npy: element type '%.*s' is not supported", (int)CRUN_MIN(len, 16),
                         p + 1);
    char order = p[1], code[3] = {p[2], p[3], 0};
    if (order == '>' && strcmp(code, "i1") && strcmp(code, "u1") && strcmp(code, "b1"))
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "npy: big-endian data is not supported");
    out->dtype = CRUN_DTYPE_UNDEFINED;
    for (size_t i = 0; i < CRUN_ARRAY_LEN(npy_types); i++)
        if (strcmp(code, npy_types[i].descr) == 0)
            out->dtype = npy_types[i].dtype;
    if (!out->dtype)
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "npy: element type '%.3s' is not supported", p + 1);
    p = npy_key(h, "fortran_order");
    if (!p)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: header has no 'fortran_order'");
    if (strncmp(p, "False", 5) != 0)
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "npy: Fortran-order arrays are not supported");
    p = npy_key(h, "shape");
    if (!p || *p != '(')
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: header has no 'shape'");
    p++;
    out->rank = 0;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        if (*p < '0' || *p > '9')
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: bad shape in header");
        if (out->rank == CRUN_MAX_RANK)
            return diag_fail(d, CRUN_ERR_UNSUPPORTED, "npy: rank above %d", CRUN_MAX_RANK);
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0 || v > CRUN_MAX_NUMEL)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: bad dim in shape");
        out->dims[out->rank++] = v;
        p = end;
    }
    if (shape_numel(out->dims, out->rank) < 0)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: shape is too large");
    return CRUN_OK;
}

crun_status npy_parse(const void *data, size_t size, Tensor *out, Diag *d)
{
    const unsigned char *b = data;
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: not a .npy file (bad magic)");
    size_t hlen, hstart;
    if (b[6] == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if ((b[6] == 2 || b[6] == 3) && size >= 12) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "npy: format version %d is not supported", b[6]);
    }
    if (hlen > size - hstart || hlen > 65536)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: header is truncated");
    char *h = str_ndup((const char *)b + hstart, hlen);
    if (!h)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "npy: out of memory");
    crun_status st = npy_header(h, out, d);
    free(h);
    if (st != CRUN_OK)
        return st;
    size_t bytes = tensor_bytes(out), off = hstart + hlen;
    if (size - off != bytes)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "npy: %zu bytes of data, the shape needs %zu", size - off,
                         bytes);
    out->data = mem_alloc_aligned(bytes);
    if (!out->data)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "npy: out of memory");
    memcpy(out->data, b + off, bytes);
    if (out->dtype == CRUN_DTYPE_BOOL)
        for (size_t i = 0; i < bytes; i++)
            ((uint8_t *)out->data)[i] = ((uint8_t *)out->data)[i] != 0;
    return CRUN_OK;
}

static const char *npy_descr(crun_dtype t)
{
    for (size_t i = 0; i < CRUN_ARRAY_LEN(npy_types); i++)
        if (npy_types[i].dtype == t)
            return npy_types[i].descr;
    return NULL;
}

crun_status npy_write(const char *path, const Tensor *t, Diag *d)
{
    const char *descr = npy_descr(t->dtype);
    if (!descr)
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "%s: cannot write %s tensors as .npy", path, dtype_name(t->dtype));
    char shape[256] = "", h[512];
    size_t n = 0;
    for (int i = 0; i < t->rank; i++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%lld%s", (long long)t->dims[i],
                              t->rank == 1 ? "," : i + 1 < t->rank ? ", " : "");
    char order = strchr("iub", descr[0]) && descr[1] == '1' ? '|' : '<';
    int hl = snprintf(h, sizeof h, "{'descr': '%c%s', 'fortran_order': False, 'shape': (%s), }", order, descr, shape);
    /* Pad with spaces so magic + length + header is a multiple of 64, ending in '\n'. */
    size_t total = align_up(10 + (size_t)hl + 1, 64);
    size_t hlen = total - 10;
    memset(h + hl, ' ', hlen - 1 - (size_t)hl);
    h[hlen - 1] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f)
        return diag_fail(d, CRUN_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    size_t bytes = tensor_bytes(t);
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h, 1, hlen, f) == hlen &&
              (bytes == 0 || fwrite(t->data, 1, bytes, f) == bytes);
    ok = fclose(f) == 0 && ok;
    return ok ? CRUN_OK : diag_fail(d, CRUN_ERR_IO, "%s: write error", path);
}

/* ---- TensorProto ---- */

crun_status pb_tensor_parse(const void *data, size_t size, Tensor *out, char **name, Diag *d)
{
    memset(out, 0, sizeof *out);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(&onnx_allocator, size, data);
    if (!tp)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "not a TensorProto (the protobuf data does not parse)");
    crun_status st = onnx_tensor_load(tp, NULL, "tensor", out, d);
    if (st == CRUN_OK && name && !(*name = str_dup(tp->name ? tp->name : ""))) {
        tensor_file_free(out);
        st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, &onnx_allocator);
    return st;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

crun_status tensor_file_read(const char *path, Tensor *out, char **name, Diag *d)
{
    void *buf = NULL;
    size_t size = 0;
    memset(out, 0, sizeof *out);
    if (name)
        *name = NULL;
    crun_status st = file_read_all(path, &buf, &size, d);
    if (st != CRUN_OK)
        return st;
    if (ends_with(path, ".npy")) {
        st = npy_parse(buf, size, out, d);
        if (st == CRUN_OK && name && !(*name = str_dup("")))
            st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        st = pb_tensor_parse(buf, size, out, name, d);
    }
    free(buf);
    if (st != CRUN_OK) {
        tensor_file_free(out);
        diag_prefix(d, "%s", path);
    }
    return st;
}

void tensor_file_free(Tensor *t)
{
    tensor_data_free(t->dtype, t->data, tensor_numel(t));
    t->data = NULL;
}

/* ---- SequenceProto and OptionalProto (onnx-data.proto), read from the wire format:
 * Debian ships only onnx.proto, and these two small messages need a few fields. ---- */

typedef struct PbReader {
    const uint8_t *p, *end;
} PbReader;

static bool pb_varint(PbReader *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Next field: number, and for length-delimited fields their bytes. Skips other wire types. */
static bool pb_next(PbReader *r, uint32_t *field, const uint8_t **data, size_t *len, uint64_t *val)
{
    uint64_t key;
    if (r->p >= r->end || !pb_varint(r, &key))
        return false;
    *field = (uint32_t)(key >> 3);
    switch (key & 7) {
    case 0: return pb_varint(r, val);
    case 1:
        if (r->end - r->p < 8)
            return false;
        r->p += 8;
        return true;
    case 2: {
        uint64_t n;
        if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return false;
        *data = r->p;
        *len = (size_t)n;
        r->p += n;
        return true;
    }
    case 5:
        if (r->end - r->p < 4)
            return false;
        r->p += 4;
        return true;
    default: return false;
    }
}

enum { PB_ELEM_TENSOR = 1, PB_ELEM_SEQUENCE = 3 };

static crun_status parse_sequence(const uint8_t *data, size_t size, ValueFile *out, Diag *d)
{
    PbReader r = {data, data + size};
    uint32_t field;
    const uint8_t *fd = NULL;
    size_t len = 0;
    uint64_t val = 0;
    out->kind = VALUE_SEQUENCE;
    while (r.p < r.end) {
        if (!pb_next(&r, &field, &fd, &len, &val))
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "not a SequenceProto (bad wire data)");
        if (field == 2 && val != PB_ELEM_TENSOR && val != 0)
            return diag_fail(d, CRUN_ERR_UNSUPPORTED, "sequences of non-tensors are not supported");
        if (field != 3)
            continue;
        Tensor *items = realloc(out->items, (size_t)(out->n + 1) * sizeof *items);
        if (!items)
            return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        out->items = items;
        crun_status st = pb_tensor_parse(fd, len, &items[out->n], NULL, d);
        if (st != CRUN_OK)
            return st;
        out->elem = items[out->n].dtype;
        out->n++;
    }
    return CRUN_OK;
}

static crun_status parse_optional(const uint8_t *data, size_t size, ValueKind kind, ValueFile *out, Diag *d)
{
    PbReader r = {data, data + size};
    uint32_t field;
    const uint8_t *fd = NULL;
    size_t len = 0;
    uint64_t val = 0;
    out->kind = kind;
    out->none = true;
    while (r.p < r.end) {
        if (!pb_next(&r, &field, &fd, &len, &val))
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "not an OptionalProto (bad wire data)");
        crun_status st = CRUN_OK;
        if (field == 3) {
            out->kind = VALUE_TENSOR;
            st = pb_tensor_parse(fd, len, &out->t, NULL, d);
            out->none = false;
        } else if (field == 5) {
            st = parse_sequence(fd, len, out, d);
            out->none = false;
        }
        if (st != CRUN_OK)
            return st;
    }
    return CRUN_OK;
}

crun_status value_file_read(const char *path, ValueKind kind, bool optional, ValueFile *out, Diag *d)
{
    memset(out, 0, sizeof *out);
    if (kind == VALUE_TENSOR && !optional) {
        crun_status st = tensor_file_read(path, &out->t, &out->name, d);
        return st;
    }
    void *buf = NULL;
    size_t size = 0;
    crun_status st = file_read_all(path, &buf, &size, d);
    if (st != CRUN_OK)
        return st;
    st = optional ? parse_optional(buf, size, kind, out, d) : parse_sequence(buf, size, out, d);
    free(buf);
    if (st != CRUN_OK) {
        value_file_free(out);
        diag_prefix(d, "%s", path);
    }
    return st;
}

void value_file_free(ValueFile *v)
{
    tensor_file_free(&v->t);
    for (int i = 0; i < v->n; i++)
        tensor_file_free(&v->items[i]);
    free(v->items);
    free(v->name);
    memset(v, 0, sizeof *v);
}
