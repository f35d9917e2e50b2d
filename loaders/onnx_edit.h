/* onnx_edit.h - small tools for rewriting an unpacked ONNX model (the quantizer's QDQ
 * output, the float16 converter): finding and reading initializers, making tensors and
 * nodes, writing the model back. Messages here use protobuf-c's default allocator
 * (malloc), so what these functions add is freed with the rest of the message. */
#ifndef CRUN_LOADERS_ONNX_EDIT_H
#define CRUN_LOADERS_ONNX_EDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "runtime/core.h"

/* The initializer named name, or NULL. */
Onnx__TensorProto *edit_find_init(const Onnx__GraphProto *g, const char *name);
/* A float32 initializer with its data in the file (not external). */
bool edit_is_float(const Onnx__TensorProto *t);
/* Elements of t; -1 when a dim is negative or the product exceeds CRUN_MAX_NUMEL. */
int64_t edit_numel(const Onnx__TensorProto *t);
/* Whether its float values (raw_data or float_data) match its dims. */
bool edit_has_floats(const Onnx__TensorProto *t);
/* A malloc'd copy of them, NULL when they do not match. */
float *edit_floats(const Onnx__TensorProto *t);

/* Whether name is one of list's n names (false for a NULL name). */
bool edit_in_list(const char *name, const char *const *list, int n);
/* Whether name is one of the graph's outputs / inputs. */
bool edit_is_output(const Onnx__GraphProto *g, const char *name);
bool edit_is_input(const Onnx__GraphProto *g, const char *name);

const Onnx__AttributeProto *edit_attr(const Onnx__NodeProto *n, const char *name);
int64_t edit_attr_i(const Onnx__NodeProto *n, const char *name, int64_t def);
float edit_attr_f(const Onnx__NodeProto *n, const char *name, float def);

/* realloc to n + 1 elements of elem bytes. */
void *edit_grow(void *arr, size_t n, size_t elem);
bool edit_push_init(Onnx__GraphProto *g, Onnx__TensorProto *t);
/* Drops initializer name (and a graph input of that name). */
void edit_drop_init(Onnx__GraphProto *g, const char *name);
/* A new initializer named base + suffix holding n_bytes of type dt with dims (raw data). */
Onnx__TensorProto *edit_new_tensor(const char *base, const char *suffix, int32_t dt, int rank, const int64_t *dims,
                                   const void *bytes, size_t n_bytes);
/* A node op(in...) -> out in the default domain; attr (NULL: none) is one int attribute. */
Onnx__NodeProto *edit_new_node(const char *op, const char *name, const char *const *in, int n_in, const char *out,
                               const char *attr, int64_t value);
/* Appends an attribute of type to n (its value left for the caller); NULL when out of
 * memory. */
Onnx__AttributeProto *edit_push_attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type);
bool edit_add_attr_i(Onnx__NodeProto *n, const char *name, int64_t v);
/* Puts n in domain. */
bool edit_set_domain(Onnx__NodeProto *n, const char *domain);
/* Imports domain at version unless the model imports it already. */
bool edit_import_domain(Onnx__ModelProto *m, const char *domain, int64_t version);
/* a + b, malloc'd. */
char *edit_cat(const char *a, const char *b);

/* A node list under construction (to replace a graph's). */
typedef struct EditNodes {
    Onnx__NodeProto **v;
    size_t n, cap;
    bool oom;
} EditNodes;
/* Appends n (NULL, or no room: sets oom and frees n). */
void edit_push_node(EditNodes *l, Onnx__NodeProto *n);

/* Turns Constant nodes holding a tensor (`value`) into initializers of the same name, so
 * weights exported that way are found like any other; returns how many moved. */
int edit_hoist_constants(Onnx__GraphProto *g);

/* Folds each BatchNormalization that follows a Conv with constant weights into the Conv's
 * weights and bias (the runtime does the same at load; a quantizer must do it first, or
 * it would quantize the unnormalised Conv output). Returns how many were folded. */
int edit_fold_batchnorm(Onnx__GraphProto *g);

/* Packs the model and writes it to path. */
crun_status edit_write(const Onnx__ModelProto *m, const char *path, Diag *d);

#endif
