/* heap.c - the C heap or a caller's region behind every allocation (see heap.h). */
#define CRUN_HEAP_IMPL
#include "runtime/heap.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REGIONS 16
#define HEADER 16 /* bytes before each region block: its size */

static _Thread_local HeapRegion *current;
static HeapRegion *_Atomic regions[MAX_REGIONS];

static bool within(const HeapRegion *r, const void *p)
{
    return r && (const uint8_t *)p >= r->base && (const uint8_t *)p < r->end;
}

bool heap_in_region(const void *p)
{
    if (!p)
        return false;
    if (within(current, p))
        return true;
    for (int i = 0; i < MAX_REGIONS; i++)
        if (within(atomic_load(&regions[i]), p))
            return true;
    return false;
}

/* A block of n bytes aligned to align (a power of two >= HEADER) from r, or NULL. */
static void *region_alloc(HeapRegion *r, size_t n, size_t align)
{
    uintptr_t at = ((uintptr_t)r->cur + HEADER + align - 1) & ~(uintptr_t)(align - 1);
    if (at > (uintptr_t)r->end || n > (uintptr_t)r->end - at)
        return NULL;
    memcpy((uint8_t *)at - HEADER, &n, sizeof n);
    r->cur = (uint8_t *)at + n;
    size_t used = (size_t)(r->cur - r->base);
    if (used > r->high)
        r->high = used;
    return (void *)at;
}

static size_t block_size(const void *p)
{
    size_t n;
    memcpy(&n, (const uint8_t *)p - HEADER, sizeof n);
    return n;
}

void *heap_malloc(size_t n) { return current ? region_alloc(current, n ? n : 1, HEADER) : malloc(n); }

void *heap_calloc(size_t n, size_t size)
{
    if (!current)
        return calloc(n, size);
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    void *p = region_alloc(current, bytes ? bytes : 1, HEADER);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void *heap_realloc(void *p, size_t n)
{
    if (!p)
        return heap_malloc(n);
    if (!heap_in_region(p))
        return realloc(p, n);
    size_t old = block_size(p);
    HeapRegion *r = current;
    if (r && within(r, p) && (uint8_t *)p + old == r->cur && n <= (size_t)(r->end - (uint8_t *)p)) {
        /* The last block grows (or shrinks) in place. */
        memcpy((uint8_t *)p - HEADER, &n, sizeof n);
        r->cur = (uint8_t *)p + n;
        size_t used = (size_t)(r->cur - r->base);
        if (used > r->high)
            r->high = used;
        return p;
    }
    void *q = heap_malloc(n);
    if (q)
        memcpy(q, p, old < n ? old : n);
    return q;
}

void heap_free(void *p)
{
    if (p && !heap_in_region(p))
        free(p);
}

void *heap_aligned(size_t n) { return current ? region_alloc(current, n, 64) : aligned_alloc(64, n); }

HeapRegion *heap_region_open(void *buf, size_t bytes)
{
    uintptr_t at = ((uintptr_t)buf + 63) & ~(uintptr_t)63;
    if (!buf || at - (uintptr_t)buf + sizeof(HeapRegion) > bytes)
        return NULL;
    HeapRegion *r = (HeapRegion *)at;
    r->base = buf;
    r->end = (uint8_t *)buf + bytes;
    r->cur = (uint8_t *)r + sizeof *r;
    r->high = (size_t)(r->cur - r->base);
    for (int i = 0; i < MAX_REGIONS; i++) {
        HeapRegion *none = NULL;
        if (atomic_compare_exchange_strong(&regions[i], &none, r))
            return r;
    }
    return NULL; /* too many static models open at once */
}

void heap_region_close(HeapRegion *r)
{
    for (int i = 0; r && i < MAX_REGIONS; i++) {
        HeapRegion *want = r;
        atomic_compare_exchange_strong(&regions[i], &want, NULL);
    }
    if (current == r)
        current = NULL;
}

HeapRegion *heap_enter(HeapRegion *r)
{
    HeapRegion *prev = current;
    current = r;
    return prev;
}
