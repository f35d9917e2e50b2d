/* packcache.h - prepared constant data (packed weights) made once per model and shared by
 * every plan and session of it: re-planning for new input shapes does not re-pack, and two
 * sessions hold one copy. Blocks live until the model is freed. Thread-safe. */
#ifndef CRUN_PACKCACHE_H
#define CRUN_PACKCACHE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct PackCache PackCache;

PackCache *packcache_new(void);
void packcache_free(PackCache *c);

/* The block for (owner, tag): made by fill(ctx, dst) into `bytes` bytes (64-byte aligned)
 * on first request, the same pointer afterwards. NULL when out of memory. */
const void *packcache_get(PackCache *c, const void *owner, const char *tag, size_t bytes,
                          void (*fill)(const void *ctx, void *dst), const void *ctx);
/* The block for (owner, tag) if it exists (never made here), else NULL. */
const void *packcache_find(PackCache *c, const void *owner, const char *tag, size_t bytes);
/* Adds a block that lives elsewhere (a compiled model's mapping): never filled, never
 * freed. false when out of memory. */
bool packcache_put_borrowed(PackCache *c, const void *owner, const char *tag, size_t bytes, const void *data);

/* The blocks held, for writing a compiled model. */
typedef struct PackEntry {
    const void *owner;
    const char *tag;
    size_t bytes;
    const void *data;
} PackEntry;
size_t packcache_count(PackCache *c);
/* Block i (in the order they were made); false past the end. */
bool packcache_entry(PackCache *c, size_t i, PackEntry *out);

/* Bytes held, for memory reports. */
size_t packcache_bytes(PackCache *c);

#endif
