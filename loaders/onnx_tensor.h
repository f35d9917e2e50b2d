/* onnx_tensor.h - reading ONNX TensorProto messages (initializers, attributes, .pb files). */
#ifndef CRUN_LOADERS_ONNX_TENSOR_H
#define CRUN_LOADERS_ONNX_TENSOR_H

#include "onnx.pb-c.h"
#include "runtime/graph.h"

/* protobuf-c allocator that counts against crun's memory cap: every unpack and
 * free_unpacked in crun passes it. */
extern ProtobufCAllocator onnx_allocator;

/* Converts tp into *out with newly allocated data (free with tensor_data_free). dir is
 * the folder external data may be read from (NULL: refused). what names the tensor in
 * messages, e.g. "initializer 'conv1.weight'". */
crun_status onnx_tensor_load(const Onnx__TensorProto *tp, const char *dir, const char *what, Tensor *out, Diag *d);
/* Like onnx_tensor_load, but when the data is raw bytes already in tp, out->data points
 * into tp (no copy) and *borrowed is set: tp must then outlive the tensor. */
crun_status onnx_tensor_borrow(Onnx__TensorProto *tp, const char *dir, const char *what, Tensor *out,
                               bool *borrowed, Diag *d);

#endif
