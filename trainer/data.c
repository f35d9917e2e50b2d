/* data.c - see data.h. */
#include "trainer/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef CRUN_HAVE_ZLIB
#include <zlib.h>
#endif

#include "loaders/tensor_file.h"

/* ---- IDX: big-endian magic (0, 0, type 0x08, rank), dims, then unsigned bytes ---- */

/* The file's bytes, gunzipped when it ends in .gz. */
static crun_status read_maybe_gz(const char *path, uint8_t **buf, size_t *size, Diag *d)
{
    size_t n = strlen(path);
    if (n < 3 || strcmp(path + n - 3, ".gz"))
        return file_read_all(path, (void **)buf, size, d);
#ifdef CRUN_HAVE_ZLIB
    gzFile f = gzopen(path, "rb");
    if (!f)
        return diag_fail(d, CRUN_ERR_IO, "cannot open %s", path);
    size_t cap = 1 << 20, len = 0;
    uint8_t *b = malloc(cap);
    int got = 1;
    while (b && got > 0) {
        if (len == cap) {
            uint8_t *g = cap < ((size_t)1 << 31) ? realloc(b, cap * 2) : NULL;
            if (!g) {
                free(b);
                b = NULL;
                break;
            }
            b = g, cap *= 2;
        }
        got = gzread(f, b + len, (unsigned)(cap - len));
        if (got > 0)
            len += (size_t)got;
    }
    gzclose(f);
    if (!b)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
    if (got < 0) {
        free(b);
        return diag_fail(d, CRUN_ERR_IO, "%s: not a valid gzip file", path);
    }
    *buf = b, *size = len;
    return CRUN_OK;
#else
    return diag_fail(d, CRUN_ERR_UNSUPPORTED, "%s: this build has no zlib to read .gz files (gunzip it first)", path);
#endif
}

/* Parses an IDX file of unsigned bytes with rank dims into dims and the data offset. */
static crun_status idx_parse(const uint8_t *b, size_t size, int rank, int64_t *dims, const char *path, Diag *d)
{
    if (size < 4 + 4 * (size_t)rank || b[0] || b[1] || b[2] != 0x08 || b[3] != rank)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: not an IDX file of %d-D unsigned bytes", path, rank);
    int64_t total = 1;
    for (int i = 0; i < rank; i++) {
        const uint8_t *p = b + 4 + 4 * i;
        dims[i] = (int64_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
        total *= dims[i];
        if (dims[i] <= 0 || total > (int64_t)1 << 32)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: bad dimension", path);
    }
    if ((size_t)total != size - 4 - 4 * (size_t)rank)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: holds %zu bytes of data, its dims say %lld", path,
                         size - 4 - 4 * (size_t)rank, (long long)total);
    return CRUN_OK;
}

/* dir/base, or dir/base.gz when only that exists. */
static void idx_path(char *out, size_t cap, const char *dir, const char *base)
{
    snprintf(out, cap, "%s/%s", dir, base);
    FILE *f = fopen(out, "rb");
    if (f)
        fclose(f);
    else
        snprintf(out, cap, "%s/%s.gz", dir, base);
}

static crun_status load_idx_images(const char *path, Dataset *ds, Diag *d)
{
    uint8_t *b = NULL;
    size_t size = 0;
    crun_status st = read_maybe_gz(path, &b, &size, d);
    int64_t dims[3];
    if (st == CRUN_OK && (st = idx_parse(b, size, 3, dims, path, d)) == CRUN_OK) {
        ds->n = dims[0];
        ds->shape = (TShape){1, (int)dims[1], (int)dims[2]};
        ds->x = malloc((size_t)(dims[0] * dims[1] * dims[2]) * sizeof(float));
        if (!ds->x)
            st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for %s", path);
        for (int64_t i = 0; ds->x && i < dims[0] * dims[1] * dims[2]; i++)
            ds->x[i] = (float)b[16 + i] / 255.0f;
    }
    free(b);
    return st;
}

static crun_status load_idx_labels(const char *path, Dataset *ds, Diag *d)
{
    uint8_t *b = NULL;
    size_t size = 0;
    crun_status st = read_maybe_gz(path, &b, &size, d);
    int64_t n = 0;
    if (st == CRUN_OK && (st = idx_parse(b, size, 1, &n, path, d)) == CRUN_OK) {
        if (n != ds->n)
            st = diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: %lld labels for %lld images", path, (long long)n,
                           (long long)ds->n);
        else if (!(ds->labels = malloc((size_t)n * sizeof(int32_t))))
            st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t i = 0; st == CRUN_OK && i < n; i++) {
            ds->labels[i] = b[8 + i];
            ds->classes = ds->labels[i] + 1 > ds->classes ? ds->labels[i] + 1 : ds->classes;
        }
    }
    free(b);
    return st;
}

crun_status data_load_idx_dir(const char *dir, bool train, Dataset *ds, Diag *d)
{
    memset(ds, 0, sizeof *ds);
    char img[4096], lab[4096];
    idx_path(img, sizeof img, dir, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");
    idx_path(lab, sizeof lab, dir, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte");
    crun_status st = load_idx_images(img, ds, d);
    if (st == CRUN_OK)
        st = load_idx_labels(lab, ds, d);
    if (st != CRUN_OK)
        data_free(ds);
    return st;
}

/* ---- .npy ---- */

static crun_status npy_images(const Tensor *t, const char *path, Dataset *ds, Diag *d)
{
    if (t->rank < 2 || t->rank > 4 || (t->dtype != CRUN_DTYPE_FLOAT && t->dtype != CRUN_DTYPE_UINT8))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: samples must be float32 or uint8 [n, ...] of rank 2 to 4",
                         path);
    ds->n = t->dims[0];
    ds->shape = t->rank == 4 ? (TShape){(int)t->dims[1], (int)t->dims[2], (int)t->dims[3]}
                : t->rank == 3 ? (TShape){1, (int)t->dims[1], (int)t->dims[2]}
                               : (TShape){(int)t->dims[1], 1, 1};
    int64_t total = ds->n * tshape_size(ds->shape);
    if (!(ds->x = malloc((size_t)total * sizeof(float) + 1)))
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < total; i++)
        ds->x[i] = t->dtype == CRUN_DTYPE_FLOAT ? ((const float *)t->data)[i] : ((const uint8_t *)t->data)[i] / 255.0f;
    return CRUN_OK;
}

static int64_t int_at(const Tensor *t, int64_t i)
{
    switch (t->dtype) {
    case CRUN_DTYPE_INT64: return ((const int64_t *)t->data)[i];
    case CRUN_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    case CRUN_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    default: return -1;
    }
}

static crun_status npy_labels(const Tensor *t, const char *path, Dataset *ds, Diag *d)
{
    if (t->rank < 1 || t->dims[0] != ds->n)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: needs %lld rows", path, (long long)ds->n);
    if (t->dtype == CRUN_DTYPE_FLOAT) {
        ds->k_targets = t->rank == 2 ? (int)t->dims[1] : 1;
        if (t->rank > 2 || !(ds->targets = malloc((size_t)(ds->n * ds->k_targets) * sizeof(float) + 1)))
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: float targets must be [n] or [n, k]", path);
        memcpy(ds->targets, t->data, (size_t)(ds->n * ds->k_targets) * sizeof(float));
        return CRUN_OK;
    }
    if (t->rank != 1 || !(ds->labels = malloc((size_t)ds->n * sizeof(int32_t) + 1)))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: labels must be [n] integers (or float targets)", path);
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t v = int_at(t, i);
        if (v < 0 || v > 1 << 20)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: label %lld of row %lld is not a class index", path,
                             (long long)v, (long long)i);
        ds->labels[i] = (int32_t)v;
        ds->classes = (int)v + 1 > ds->classes ? (int)v + 1 : ds->classes;
    }
    return CRUN_OK;
}

crun_status data_load_npy(const char *x_path, const char *y_path, Dataset *ds, Diag *d)
{
    memset(ds, 0, sizeof *ds);
    Tensor tx = {0}, ty = {0};
    crun_status st = tensor_file_read(x_path, &tx, NULL, d);
    if (st == CRUN_OK)
        st = npy_images(&tx, x_path, ds, d);
    if (st == CRUN_OK)
        st = tensor_file_read(y_path, &ty, NULL, d);
    if (st == CRUN_OK)
        st = npy_labels(&ty, y_path, ds, d);
    tensor_file_free(&tx);
    tensor_file_free(&ty);
    if (st != CRUN_OK)
        data_free(ds);
    return st;
}

void data_free(Dataset *ds)
{
    free(ds->x), free(ds->labels), free(ds->targets);
    memset(ds, 0, sizeof *ds);
}

/* ---- batches ---- */

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void data_shuffle(int64_t *order, int64_t n, uint64_t seed, int epoch)
{
    uint64_t s = mix(seed ^ mix((uint64_t)epoch + 1));
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        s = mix(s);
        int64_t j = (int64_t)(s % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Sample src (c x h x w) flipped and shifted by (dy, dx) into dst. */
static void augment_one(const float *src, TShape s, bool flip, int dy, int dx, float *dst)
{
    for (int c = 0; c < s.c; c++)
        for (int y = 0; y < s.h; y++)
            for (int x = 0; x < s.w; x++) {
                int sy = y - dy, sx = (flip ? s.w - 1 - x : x) - dx;
                bool in = sy >= 0 && sy < s.h && sx >= 0 && sx < s.w;
                dst[((int64_t)c * s.h + y) * s.w + x] = in ? src[((int64_t)c * s.h + sy) * s.w + sx] : 0.0f;
            }
}

void data_batch(const Dataset *ds, const int64_t *order, int count, const Augment *aug, uint64_t seed, float *x,
                int32_t *labels, float *targets)
{
    int64_t size = tshape_size(ds->shape);
    for (int i = 0; i < count; i++) {
        int64_t k = order[i];
        const float *src = ds->x + k * size;
        if (aug && (aug->flip || aug->shift > 0)) {
            uint64_t r = mix(seed ^ mix((uint64_t)k * 7919 + (uint64_t)i));
            int span = 2 * aug->shift + 1;
            bool flip = aug->flip && (r & 1);
            int dy = aug->shift ? (int)((r >> 8) % (uint64_t)span) - aug->shift : 0;
            int dx = aug->shift ? (int)((r >> 24) % (uint64_t)span) - aug->shift : 0;
            augment_one(src, ds->shape, flip, dy, dx, x + i * size);
        } else {
            memcpy(x + i * size, src, (size_t)size * sizeof *x);
        }
        if (labels && ds->labels)
            labels[i] = ds->labels[k];
        if (targets && ds->targets)
            memcpy(targets + (int64_t)i * ds->k_targets, ds->targets + k * ds->k_targets,
                   (size_t)ds->k_targets * sizeof *targets);
    }
}
