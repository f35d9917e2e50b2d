/* onnx_nbits.h - weight-only block quantization of a model's MatMul and Gemm weights:
 * each node with a constant float weight becomes a com.microsoft MatMulNBits (the form
 * ONNX Runtime runs too) whose weights are `bits`-bit codes in blocks of block_size, with
 * a float16 scale (widened by a Cast) and a packed zero point per block. Activations and
 * every other op stay float. */
#ifndef CRUN_LOADERS_ONNX_NBITS_H
#define CRUN_LOADERS_ONNX_NBITS_H

#include "runtime/core.h"

/* Rewrites the model bytes and writes them to path; *n_done counts the nodes quantized.
 * Nodes named in exclude stay as they are. */
crun_status nbits_write(const void *data, size_t size, int bits, int block, const char *const *exclude,
                        int n_exclude, const char *path, int *n_done, Diag *d);

#endif
