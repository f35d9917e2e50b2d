/* tensor_file.h - reading and writing single tensors: NumPy .npy files and ONNX
 * TensorProto .pb files (the backend-test layout). */
#ifndef CRUN_LOADERS_TENSOR_FILE_H
#define CRUN_LOADERS_TENSOR_FILE_H

#include "runtime/core.h"

/* The whole of a regular file (at most 4 GiB) in a malloc'd buffer. */
crun_status file_read_all(const char *path, void **buf, size_t *size, Diag *d);

/* Reads path (.npy, or anything else as a TensorProto). out->data is allocated (free
 * with tensor_file_free); *name gets the TensorProto's name if name is not NULL (may be
 * "" for .npy; free with free()). */
crun_status tensor_file_read(const char *path, Tensor *out, char **name, Diag *d);
/* Parses .npy bytes. */
crun_status npy_parse(const void *data, size_t size, Tensor *out, Diag *d);
/* Parses TensorProto bytes. */
crun_status pb_tensor_parse(const void *data, size_t size, Tensor *out, char **name, Diag *d);
void tensor_file_free(Tensor *t);
/* A value read from a .pb file of the ONNX test layout: a TensorProto, or (kind
 * VALUE_SEQUENCE) a SequenceProto of tensors, or an OptionalProto (possibly none). */
typedef struct ValueFile {
    ValueKind kind;
    bool none;
    Tensor t;        /* the tensor (kind VALUE_TENSOR) */
    int n;           /* the items (kind VALUE_SEQUENCE) */
    Tensor *items;
    crun_dtype elem; /* element type of a sequence */
    char *name;
} ValueFile;

/* Reads path as a tensor, sequence or optional .pb (as the model says the value is). */
crun_status value_file_read(const char *path, ValueKind kind, bool optional, ValueFile *out, Diag *d);
void value_file_free(ValueFile *v);

/* Writes t as a version 1.0 .npy file. */
crun_status npy_write(const char *path, const Tensor *t, Diag *d);

#endif
