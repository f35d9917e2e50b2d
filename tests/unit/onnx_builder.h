/* onnx_builder.h - building small ONNX models in C for tests (through the same
 * protobuf-c schema the loader reads). Everything is freed by ob_free. */
#ifndef CRUN_TEST_ONNX_BUILDER_H
#define CRUN_TEST_ONNX_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "crun.h"
#include "onnx.pb-c.h"

typedef struct OnnxBuilder OnnxBuilder;

OnnxBuilder *ob_new(int64_t opset);
void ob_free(OnnxBuilder *b);
Onnx__ModelProto *ob_model(OnnxBuilder *b);

/* dims[k] < 0 becomes the symbolic dim syms[k] (or "N" when syms is NULL); rank < 0
 * declares no shape. */
void ob_input(OnnxBuilder *b, const char *name, crun_dtype t, int rank, const int64_t *dims,
              const char *const *syms);
void ob_output(OnnxBuilder *b, const char *name);
/* A tensor with raw_data (bytes = numel * element size; strings not supported). */
Onnx__TensorProto *ob_tensor(OnnxBuilder *b, const char *name, crun_dtype t, int rank, const int64_t *dims,
                             const void *data);
void ob_initializer(OnnxBuilder *b, Onnx__TensorProto *t);
/* Shorthand: a float32 initializer. */
void ob_init_f32(OnnxBuilder *b, const char *name, int rank, const int64_t *dims, const float *data);
void ob_init_i64(OnnxBuilder *b, const char *name, int rank, const int64_t *dims, const int64_t *data);
/* inputs/outputs are comma-separated names; an empty entry is an omitted optional one. */
Onnx__NodeProto *ob_node(OnnxBuilder *b, const char *op, const char *inputs, const char *outputs);
void ob_attr_int(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, int64_t v);
void ob_attr_ints(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, const int64_t *v, int count);
void ob_attr_float(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, float v);
void ob_attr_string(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, const char *v);
void ob_attr_tensor(OnnxBuilder *b, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t);

/* Serialises the model (malloc'd, caller frees). */
uint8_t *ob_pack(OnnxBuilder *b, size_t *size);
/* Serialises and loads it; NULL on failure (crun_last_error says why). */
crun_model *ob_load(OnnxBuilder *b);

#endif
