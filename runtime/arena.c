/* arena.c - greedy best-fit placement of buffers by lifetime (see arena.h). */
#include "runtime/arena.h"

#include <stdlib.h>

#include "runtime/core.h"

/* Sort keys carry what the comparators need, so sorting needs no shared state and
 * sessions may plan on several threads at once. */
typedef struct SizeKey {
    size_t size;
    int first, index;
} SizeKey;

typedef struct OffsetKey {
    size_t offset, end;
} OffsetKey;

/* Largest first; ties by earlier start, then index, so the result is deterministic. */
static int by_size_desc(const void *a, const void *b)
{
    const SizeKey *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->index - y->index;
}

static int by_offset(const void *a, const void *b)
{
    const OffsetKey *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Offset for b among the placed buffers: the smallest gap that fits, else the top. */
static size_t place(const ArenaBuf *bufs, const SizeKey *placed, int n_placed, OffsetKey *live, const ArenaBuf *b)
{
    int m = 0;
    for (int k = 0; k < n_placed; k++) {
        const ArenaBuf *o = &bufs[placed[k].index];
        if (o->size && o->first <= b->last && b->first <= o->last)
            live[m++] = (OffsetKey){o->offset, o->offset + o->size};
    }
    sort_items(live, (size_t)m, sizeof *live, by_offset);
    size_t prev_end = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
    for (int k = 0; k < m; k++) {
        if (live[k].offset > prev_end) {
            size_t gap = live[k].offset - prev_end;
            if (gap >= b->size && gap < best_gap) {
                best_gap = gap;
                best = prev_end;
            }
        }
        if (live[k].end > prev_end)
            prev_end = live[k].end;
    }
    return best != SIZE_MAX ? best : prev_end;
}

size_t arena_assign(ArenaBuf *bufs, int n)
{
    SizeKey *order = malloc(((size_t)n + 1) * sizeof *order);
    OffsetKey *live = malloc(((size_t)n + 1) * sizeof *live);
    if (!order || !live) {
        free(order);
        free(live);
        return SIZE_MAX;
    }
    for (int i = 0; i < n; i++) {
        bufs[i].size = align_up(bufs[i].size, CRUN_ALIGN);
        order[i] = (SizeKey){bufs[i].size, bufs[i].first, i};
    }
    sort_items(order, (size_t)n, sizeof *order, by_size_desc);
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        ArenaBuf *b = &bufs[order[k].index];
        b->offset = b->size ? place(bufs, order, k, live, b) : 0;
        if (b->offset + b->size > total)
            total = b->offset + b->size;
    }
    free(order);
    free(live);
    return total;
}

size_t arena_lower_bound(const ArenaBuf *bufs, int n)
{
    int lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        lo = bufs[i].first < lo ? bufs[i].first : lo;
        hi = bufs[i].last > hi ? bufs[i].last : hi;
    }
    size_t steps = (size_t)(hi - lo) + 2;
    int64_t *delta = calloc(steps, sizeof *delta);
    if (!delta)
        return 0;
    for (int i = 0; i < n; i++) {
        size_t sz = align_up(bufs[i].size, CRUN_ALIGN);
        delta[bufs[i].first - lo] += (int64_t)sz;
        delta[bufs[i].last - lo + 1] -= (int64_t)sz;
    }
    int64_t cur = 0, best = 0;
    for (size_t s = 0; s + 1 < steps; s++) {
        cur += delta[s];
        best = cur > best ? cur : best;
    }
    free(delta);
    return (size_t)best;
}
