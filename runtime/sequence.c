/* sequence.c - sequence values and string slots (see sequence.h). */
#include "runtime/sequence.h"

#include "runtime/graph.h"

#include <stdlib.h>
#include <string.h>

void seq_clear(Sequence *s)
{
    for (int i = 0; i < s->n; i++)
        tensor_data_free(s->items[i].dtype, s->items[i].data, tensor_numel(&s->items[i]));
    s->n = 0;
}

void seq_free(Sequence *s)
{
    if (!s)
        return;
    seq_clear(s);
    free(s->items);
    free(s);
}

/* A deep copy of tensor t into *out (data newly allocated). */
static crun_status tensor_clone(const Tensor *t, Tensor *out)
{
    *out = *t;
    out->kind = VALUE_TENSOR;
    out->seq = NULL;
    out->none = false;
    size_t bytes = tensor_bytes(t);
    out->data = t->dtype == CRUN_DTYPE_STRING ? mem_calloc_aligned(bytes) : mem_alloc_aligned(bytes);
    if (!out->data)
        return CRUN_ERR_OUT_OF_MEMORY;
    if (t->dtype != CRUN_DTYPE_STRING) {
        if (bytes)
            memcpy(out->data, t->data, bytes);
        return CRUN_OK;
    }
    crun_status st = strings_copy(out->data, t->data, tensor_numel(t));
    if (st != CRUN_OK) {
        tensor_data_free(out->dtype, out->data, tensor_numel(out));
        out->data = NULL;
    }
    return st;
}

crun_status seq_insert_copy(Sequence *s, int pos, const Tensor *t)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        Tensor *items = realloc(s->items, (size_t)cap * sizeof *items);
        if (!items)
            return CRUN_ERR_OUT_OF_MEMORY;
        s->items = items;
        s->cap = cap;
    }
    Tensor copy;
    crun_status st = tensor_clone(t, &copy);
    if (st != CRUN_OK)
        return st;
    memmove(&s->items[pos + 1], &s->items[pos], (size_t)(s->n - pos) * sizeof *s->items);
    s->items[pos] = copy;
    s->n++;
    if (!s->dtype)
        s->dtype = t->dtype;
    return CRUN_OK;
}

void seq_erase(Sequence *s, int pos)
{
    tensor_data_free(s->items[pos].dtype, s->items[pos].data, tensor_numel(&s->items[pos]));
    memmove(&s->items[pos], &s->items[pos + 1], (size_t)(s->n - pos - 1) * sizeof *s->items);
    s->n--;
}

crun_status seq_copy(Sequence *dst, const Sequence *src)
{
    seq_clear(dst);
    dst->dtype = src->dtype;
    for (int i = 0; i < src->n; i++) {
        crun_status st = seq_insert_copy(dst, i, &src->items[i]);
        if (st != CRUN_OK)
            return st;
    }
    return CRUN_OK;
}

crun_status strings_copy(char **dst, char *const *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (dst[i] == src[i])
            continue;
        char *c = str_dup(src[i] ? src[i] : "");
        if (!c)
            return CRUN_ERR_OUT_OF_MEMORY;
        free(dst[i]);
        dst[i] = c;
    }
    return CRUN_OK;
}

crun_status tensor_set_string(Tensor *t, int64_t i, const char *s, size_t len)
{
    char *c = str_ndup(s, len);
    if (!c)
        return CRUN_ERR_OUT_OF_MEMORY;
    char **slots = t->data;
    free(slots[i]);
    slots[i] = c;
    return CRUN_OK;
}

crun_status value_copy(Tensor *dst, const Tensor *src)
{
    dst->none = src->none;
    if (src->none)
        return CRUN_OK;
    if (src->kind == VALUE_SEQUENCE)
        return dst->seq == src->seq ? CRUN_OK : seq_copy(dst->seq, src->seq);
    if (dst->data == src->data)
        return CRUN_OK;
    size_t bytes = tensor_bytes(src);
    if (src->dtype == CRUN_DTYPE_STRING)
        return strings_copy(dst->data, src->data, tensor_numel(src));
    if (bytes)
        memmove(dst->data, src->data, bytes);
    return CRUN_OK;
}

void store_free(ValueStore *b)
{
    if (b->strings)
        tensor_data_free(CRUN_DTYPE_STRING, b->ptr, b->strings);
    else
        mem_free(b->ptr);
    seq_free(b->seq);
    memset(b, 0, sizeof *b);
}

crun_status store_prepare(ValueStore *b, Tensor *t)
{
    if (t->none)
        return CRUN_OK;
    if (t->kind == VALUE_SEQUENCE) {
        if (!b->seq && !(b->seq = calloc(1, sizeof *b->seq)))
            return CRUN_ERR_OUT_OF_MEMORY;
        seq_clear(b->seq);
        b->seq->dtype = t->dtype;
        t->seq = b->seq;
        return CRUN_OK;
    }
    size_t need = tensor_bytes(t);
    bool strings = t->dtype == CRUN_DTYPE_STRING;
    if (need > b->cap || strings != (b->strings > 0) || !b->ptr) {
        Sequence *keep = b->seq;
        b->seq = NULL;
        store_free(b);
        b->seq = keep;
        b->ptr = mem_calloc_aligned(need);
        if (!b->ptr)
            return CRUN_ERR_OUT_OF_MEMORY;
        b->cap = need;
        b->strings = strings ? (int64_t)(need / sizeof(char *)) : 0;
    }
    t->data = b->ptr;
    return CRUN_OK;
}
