/* packcache.c - a mutex-guarded list of packed blocks keyed by (owner, tag). Lookups
 * happen while planning only, so a list is fast enough. */
#include "runtime/packcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core.h"

typedef struct Entry {
    const void *owner;
    char tag[48];
    size_t bytes;
    void *data;
    bool borrowed;
} Entry;

struct PackCache {
    pthread_mutex_t mu;
    Entry *v;
    size_t n, cap, total;
};

PackCache *packcache_new(void)
{
    PackCache *c = calloc(1, sizeof *c);
    if (c)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

void packcache_free(PackCache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        if (!c->v[i].borrowed)
            mem_free(c->v[i].data);
    free(c->v);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static Entry *find(PackCache *c, const void *owner, const char *tag, size_t bytes)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].owner == owner && c->v[i].bytes == bytes && !strcmp(c->v[i].tag, tag))
            return &c->v[i];
    return NULL;
}

static bool grow(PackCache *c)
{
    if (c->n < c->cap)
        return true;
    size_t cap = c->cap ? 2 * c->cap : 32;
    Entry *v = realloc(c->v, cap * sizeof *v);
    if (!v)
        return false;
    c->v = v;
    c->cap = cap;
    return true;
}

static void add(PackCache *c, const void *owner, const char *tag, size_t bytes, void *data, bool borrowed)
{
    Entry *e = &c->v[c->n++];
    e->owner = owner;
    e->bytes = bytes;
    strncpy(e->tag, tag, sizeof e->tag - 1);
    e->tag[sizeof e->tag - 1] = 0;
    e->data = data;
    e->borrowed = borrowed;
    c->total += bytes;
}

const void *packcache_get(PackCache *c, const void *owner, const char *tag, size_t bytes,
                          void (*fill)(const void *ctx, void *dst), const void *ctx)
{
    pthread_mutex_lock(&c->mu);
    Entry *e = find(c, owner, tag, bytes);
    void *data = e ? e->data : NULL;
    if (!e && grow(c) && (data = mem_alloc_aligned(bytes)) != NULL) {
        fill(ctx, data);
        add(c, owner, tag, bytes, data, false);
    }
    pthread_mutex_unlock(&c->mu);
    return data;
}

const void *packcache_find(PackCache *c, const void *owner, const char *tag, size_t bytes)
{
    pthread_mutex_lock(&c->mu);
    Entry *e = find(c, owner, tag, bytes);
    const void *data = e ? e->data : NULL;
    pthread_mutex_unlock(&c->mu);
    return data;
}

bool packcache_put_borrowed(PackCache *c, const void *owner, const char *tag, size_t bytes, const void *data)
{
    pthread_mutex_lock(&c->mu);
    bool found = find(c, owner, tag, bytes) != NULL, ok = found || grow(c);
    if (!found && ok)
        add(c, owner, tag, bytes, (void *)data, true);
    pthread_mutex_unlock(&c->mu);
    return ok;
}

size_t packcache_count(PackCache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool packcache_entry(PackCache *c, size_t i, PackEntry *out)
{
    pthread_mutex_lock(&c->mu);
    bool ok = i < c->n;
    if (ok)
        *out = (PackEntry){c->v[i].owner, c->v[i].tag, c->v[i].bytes, c->v[i].data};
    pthread_mutex_unlock(&c->mu);
    return ok;
}

size_t packcache_bytes(PackCache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t b = c->total;
    pthread_mutex_unlock(&c->mu);
    return b;
}
