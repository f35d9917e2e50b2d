/* broadcast.c - ONNX multidirectional broadcasting (numpy rules, see onnx/docs/Broadcasting.md). */
#include "ops/broadcast.h"

#include <string.h>

#include "runtime/threadpool.h"

void bcast_plan(BcastPlan *bp, const Tensor *out, const Tensor *const *in, int n_in)
{
    assert(n_in <= BCAST_MAX_IN);
    memset(bp, 0, sizeof *bp);
    bp->n_in = n_in;
    int r = out->rank, w = 0;
    int64_t st[BCAST_MAX_IN][CRUN_MAX_RANK];
    for (int i = 0; i < n_in; i++) {
        int off = r - in[i]->rank;
        int64_t s = 1;
        for (int j = r - 1; j >= 0; j--) {
            int64_t dim = j < off ? 1 : in[i]->dims[j - off];
            st[i][j] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    /* Drop unit output dims, then merge neighbours that stay contiguous for every input. */
    for (int j = 0; j < r; j++) {
        if (out->dims[j] == 1)
            continue;
        bool merge = w > 0;
        for (int i = 0; i < n_in && merge; i++)
            merge = bp->strides[i][w - 1] == st[i][j] * out->dims[j];
        if (merge) {
            bp->dims[w - 1] *= out->dims[j];
            for (int i = 0; i < n_in; i++)
                bp->strides[i][w - 1] = st[i][j];
        } else {
            bp->dims[w] = out->dims[j];
            for (int i = 0; i < n_in; i++)
                bp->strides[i][w] = st[i][j];
            w++;
        }
    }
    if (w == 0) {
        bp->dims[0] = 1;
        w = 1;
    }
    bp->rank = w;
    bp->rows = 1;
    for (int j = 0; j < w - 1; j++)
        bp->rows *= bp->dims[j];
}

typedef struct BcastJob {
    const BcastPlan *bp;
    char *out;
    const char *in[BCAST_MAX_IN];
    size_t esz_out, esz_in[BCAST_MAX_IN];
    BcastLoop loop;
    const void *arg;
    int64_t chunk;         /* elements per tile when rows are split */
    int64_t tiles_per_row; /* > 1: each tile is part of one row */
    int64_t rows_per_tile;
} BcastJob;

static void run_span(const BcastJob *j, int64_t row, int64_t col, int64_t len)
{
    const BcastPlan *bp = j->bp;
    int last = bp->rank - 1;
    int64_t off[BCAST_MAX_IN] = {0};
    int64_t rem = row;
    for (int d = last - 1; d >= 0; d--) {
        int64_t idx = rem % bp->dims[d];
        rem /= bp->dims[d];
        for (int i = 0; i < bp->n_in; i++)
            off[i] += idx * bp->strides[i][d];
    }
    const void *ptrs[BCAST_MAX_IN];
    int64_t s[BCAST_MAX_IN];
    for (int i = 0; i < bp->n_in; i++) {
        s[i] = bp->strides[i][last];
        ptrs[i] = j->in[i] + (size_t)(off[i] + col * s[i]) * j->esz_in[i];
    }
    j->loop(j->out + (size_t)(row * bp->dims[last] + col) * j->esz_out, ptrs, s, len, j->arg);
}

static void bcast_task(void *ctx, int64_t t, int thread)
{
    const BcastJob *j = ctx;
    int64_t n = j->bp->dims[j->bp->rank - 1];
    if (j->tiles_per_row > 1) {
        int64_t row = t / j->tiles_per_row, col = (t % j->tiles_per_row) * j->chunk;
        run_span(j, row, col, CRUN_MIN(j->chunk, n - col));
        return;
    }
    int64_t r0 = t * j->rows_per_tile, r1 = CRUN_MIN(j->bp->rows, r0 + j->rows_per_tile);
    for (int64_t r = r0; r < r1; r++)
        run_span(j, r, 0, n);
}

void bcast_run(const BcastPlan *bp, Tensor *out, const Tensor *const *in, BcastLoop loop, const void *arg,
               struct ThreadPool *pool)
{
    int64_t total = tensor_numel(out);
    if (total <= 0)
        return;
    BcastJob j = {.bp = bp, .out = out->data, .esz_out = dtype_size(out->dtype), .loop = loop, .arg = arg};
    for (int i = 0; i < bp->n_in; i++) {
        j.in[i] = in[i]->data;
        j.esz_in[i] = dtype_size(in[i]->dtype);
    }
    int threads = pool_threads(pool);
    /* Tiles of at least 16K elements, about four per thread, so small ops stay serial. */
    int64_t chunk = CRUN_MAX((int64_t)16384, total / (threads * 4));
    int64_t n = bp->dims[bp->rank - 1];
    int64_t tasks;
    if (n > chunk) {
        j.chunk = chunk;
        j.tiles_per_row = (n + chunk - 1) / chunk;
        tasks = bp->rows * j.tiles_per_row;
    } else {
        j.rows_per_tile = CRUN_MAX((int64_t)1, chunk / n);
        j.tiles_per_row = 1;
        tasks = (bp->rows + j.rows_per_tile - 1) / j.rows_per_tile;
    }
    pool_for(pool, tasks, bcast_task, &j);
}
