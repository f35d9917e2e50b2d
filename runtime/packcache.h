/* packcache.h - prepared constant data (packed weights) made once per model and shared by
 * every plan and session of it: re-planning for new input shapes does not re-pack, and two
 * sessions hold one copy. Blocks live until the model is freed. Thread-safe. */
#ifndef CRUN_PACKCACHE_H
#define CRUN_PACKCACHE_H

#include <stddef.h>

typedef struct PackCache PackCache;

PackCache *packcache_new(void);
void packcache_free(PackCache *c);

/* The block for (owner, tag): made by fill(ctx, dst) into `bytes` bytes (64-byte aligned)
 * on first request, the same pointer afterwards. NULL when out of memory. */
const void *packcache_get(PackCache *c, const void *owner, const char *tag, size_t bytes,
                          void (*fill)(const void *ctx, void *dst), const void *ctx);
/* Bytes held, for memory reports. */
size_t packcache_bytes(PackCache *c);

#endif
