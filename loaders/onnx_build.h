/* onnx_build.h - writing a new ONNX model node by node, for code outside loaders/ (the
 * trainer's export) that must not see protobuf-c types. A builder collects float
 * initializers, nodes with int, ints and float attributes, and the graph's float inputs
 * and outputs; onnx_build_bytes packs it into a ModelProto of the default domain. */
#ifndef CRUN_LOADERS_ONNX_BUILD_H
#define CRUN_LOADERS_ONNX_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core.h"

typedef struct OnnxBuild OnnxBuild;

/* A model importing the default domain at opset; NULL when out of memory. */
OnnxBuild *onnx_build_new(int opset, const char *producer);
void onnx_build_free(OnnxBuild *b);

/* A float graph input or output; a negative dim is the symbolic dim "N". */
void onnx_build_value(OnnxBuild *b, bool output, const char *name, int rank, const int64_t *dims);
/* A float32 initializer (the data is copied). */
void onnx_build_init(OnnxBuild *b, const char *name, int rank, const int64_t *dims, const float *data);
/* A node op(in...) -> out; attributes go to the node added last. */
void onnx_build_node(OnnxBuild *b, const char *op, const char *name, const char *const *in, int n_in,
                     const char *out);
void onnx_build_attr_i(OnnxBuild *b, const char *name, int64_t v);
void onnx_build_attr_f(OnnxBuild *b, const char *name, float v);
void onnx_build_attr_ints(OnnxBuild *b, const char *name, const int64_t *v, int n);

/* The packed model (malloc'd); fails if any step above ran out of memory. */
crun_status onnx_build_bytes(OnnxBuild *b, uint8_t **bytes, size_t *size, Diag *d);

#endif
