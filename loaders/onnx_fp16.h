/* onnx_fp16.h - stores a model's float32 weights as float16 (`crun convert --fp16`): each
 * float initializer of at least 16 values becomes a float16 one followed by a Cast back to
 * float, so every op sees the types it saw before and other runtimes run the file too. */
#ifndef CRUN_LOADERS_ONNX_FP16_H
#define CRUN_LOADERS_ONNX_FP16_H

#include "runtime/core.h"

/* Converts the model bytes and writes the result to path. Values beyond float16's range
 * saturate to +-65504; *n_converted gets the number of initializers converted. */
crun_status fp16_convert(const void *data, size_t size, const char *path, int *n_converted, Diag *d);

#endif
