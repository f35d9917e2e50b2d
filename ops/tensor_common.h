/* tensor_common.h - helpers shared by the tensor-manipulation ops (tensor.c, tensor_*.c,
 * scatter.c, resize.c): element copies that deep-copy strings, strided views copied into
 * dense outputs, and small integer lists read from inputs.
 *
 * These ops move elements without looking at them, so they work on raw element bytes of
 * any dtype; STRING tensors hold owned char* slots (runtime/sequence.h), which is why
 * every copy goes through elems_copy / elems_fill instead of memcpy. */
#ifndef CRUN_OPS_TENSOR_COMMON_H
#define CRUN_OPS_TENSOR_COMMON_H

#include <string.h>

#include "ops/registry.h"

struct ThreadPool;

/* Like NODE_CHECK for failures that depend on an input's values (a shape, a count, an
 * index held in a tensor): the model may be fine, the data is not. */
#define DATA_CHECK(c, cond, ...) \
    do { \
        if (!(cond)) \
            return node_fail((c)->node, (c)->d, CRUN_ERR_RUNTIME, __VA_ARGS__); \
    } while (0)

/* Copies n elements of type t (n <= 0: nothing); strings are deep-copied into dst's owned
 * slots. dst and src must not overlap unless equal. Fails only on out of memory. */
crun_status elems_copy(void *dst, const void *src, int64_t n, crun_dtype t);
/* Sets n elements to *value (one element of type t, e.g. a char* for strings). */
crun_status elems_fill(void *dst, const void *value, int64_t n, crun_dtype t);

/* dst = src^T for a rows x cols float matrix (dst is cols x rows), in blocks of 16
 * columns so that the writes stay within a few cache lines: NCHW <-> NHWC per image. */
void transpose_f32(const float *src, float *dst, int64_t rows, int64_t cols);

/* Copies one element of es bytes (not a string): the per-element copy of gather-like
 * kernels, a constant-size memcpy once the compiler has inlined it. */
static inline void elem_move(void *dst, const void *src, size_t es)
{
    switch (es) {
    case 1: memcpy(dst, src, 1); break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memcpy(dst, src, es);
    }
}

/* A view of a source buffer: the dense output element (i0, ..., ir-1) reads source
 * element sum(ik * stride[k]). Strides may be 0 (broadcast). Tile and DepthToSpace need
 * up to twice the tensor rank. */
#define VIEW_MAX_RANK (2 * CRUN_MAX_RANK)
typedef struct StridedView {
    int rank;
    int64_t dims[VIEW_MAX_RANK];
    int64_t stride[VIEW_MAX_RANK];
} StridedView;

/* Drops unit dims and merges dims that are contiguous in the source, so the innermost
 * run is as long as possible. Keeps at least one dim. */
void view_simplify(StridedView *v);
/* Copies the view of src into the dense dst (numel = product of dims). Numeric types run
 * over the pool; strings run on the caller (they allocate). */
crun_status view_copy(const StridedView *v, const void *src, void *dst, crun_dtype t, struct ThreadPool *pool);

/* Reads an int32/int64 input holding at most max values (a scalar counts as one) into
 * out. *count is the number read, or -1 when the input is omitted (t NULL) or its value
 * is not known yet (then *unknown is set). Fails when the type or size is wrong. */
crun_status input_ints(const Node *n, Diag *d, const Tensor *t, const char *what, int64_t *out, int max,
                       int *count, bool *unknown);

#endif
