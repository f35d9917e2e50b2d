/* heap.h - where the library's memory comes from: the C heap, or a caller's buffer.
 *
 * Every malloc/calloc/realloc/free in crun's sources goes through heap_* (core.h maps the
 * names), so that a compiled model opened with crun_static_open lives entirely in the
 * buffer its caller gave: while a thread has entered a region, its allocations are carved
 * from the region (a bump allocator; frees of region blocks do nothing), and frees of
 * blocks in any registered region are ignored from any thread. */
#ifndef CRUN_RUNTIME_HEAP_H
#define CRUN_RUNTIME_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HeapRegion {
    uint8_t *base, *cur, *end;
    size_t high; /* most bytes from base ever in use */
} HeapRegion;

void *heap_malloc(size_t n);
void *heap_calloc(size_t n, size_t size);
void *heap_realloc(void *p, size_t n);
void heap_free(void *p);
/* 64-byte aligned (size a multiple of 64); freed with heap_free. */
void *heap_aligned(size_t n);
/* Whether p lies in a registered region (its blocks are never given back to libc). */
bool heap_in_region(const void *p);

/* Lays a region over buf (the region's own record takes its first bytes); NULL when buf
 * is too small. The region is registered until heap_region_close. */
HeapRegion *heap_region_open(void *buf, size_t bytes);
void heap_region_close(HeapRegion *r);
/* Makes this thread allocate from r (NULL: the C heap); returns the region it replaces. */
HeapRegion *heap_enter(HeapRegion *r);

#endif
