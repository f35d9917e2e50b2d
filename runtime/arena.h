/* arena.h - placing buffers with known lifetimes in one block of memory.
 *
 * Greedy by size, best fit: the largest buffer is placed first; each buffer goes into the
 * smallest gap left between the buffers already placed whose lifetimes overlap its own,
 * or above them all. Offsets are multiples of CRUN_ALIGN. */
#ifndef CRUN_ARENA_H
#define CRUN_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct ArenaBuf {
    size_t size;    /* bytes (rounded up to CRUN_ALIGN by arena_assign) */
    int first, last;/* steps during which the buffer must hold its data, inclusive */
    size_t offset;  /* set by arena_assign */
} ArenaBuf;

/* Sets every offset; returns the arena size, or SIZE_MAX when out of memory. */
size_t arena_assign(ArenaBuf *bufs, int n);
/* The most bytes alive at any one step: no placement can use less. */
size_t arena_lower_bound(const ArenaBuf *bufs, int n);

#endif
