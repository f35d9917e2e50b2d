/* sequence.h - ONNX sequence values (a list of tensors of one element type) and string
 * tensors. Both live outside the arena: their sizes are only known while running.
 *
 * Ownership: a Sequence owns its items' data; a string tensor held by a session owns each
 * string (every STRING buffer deep-copies, so a buffer never frees strings it does not own). */
#ifndef CRUN_SEQUENCE_H
#define CRUN_SEQUENCE_H

#include "runtime/core.h"

typedef struct Sequence {
    crun_dtype dtype; /* element type; UNDEFINED only for an empty sequence of unknown type */
    int n, cap;
    Tensor *items;    /* n tensors, data owned */
} Sequence;

/* Drops every item (frees their data); keeps the item array for reuse. */
void seq_clear(Sequence *s);
void seq_free(Sequence *s);
/* Appends a deep copy of t (a tensor) at position pos (0..n; n appends). */
crun_status seq_insert_copy(Sequence *s, int pos, const Tensor *t);
/* Removes item pos (0..n-1). */
void seq_erase(Sequence *s, int pos);
/* Makes dst a deep copy of src (dst is cleared first; dst != src). */
crun_status seq_copy(Sequence *dst, const Sequence *src);

/* Copies n strings from src into the string slots of dst (which own theirs: old ones are
 * freed). */
crun_status strings_copy(char **dst, char *const *src, int64_t n);
/* Sets string slot i of a STRING tensor to a copy of s[0..len). */
crun_status tensor_set_string(Tensor *t, int64_t i, const char *s, size_t len);

/* Storage for one value whose size is known only while running: a byte buffer (string
 * slots, all owned, for STRING tensors) or a sequence. Grows, never shrinks. */
typedef struct ValueStore {
    void *ptr;
    size_t cap;      /* bytes */
    int64_t strings; /* string slots in ptr */
    Sequence *seq;
} ValueStore;

/* Points t (whose kind, dtype and shape are set) at storage for it: t->data, or t->seq
 * emptied. Nothing for a none value. */
crun_status store_prepare(ValueStore *s, Tensor *t);
void store_free(ValueStore *s);

/* Copies the whole value src (tensor data incl. strings, a sequence, or none) into dst,
 * whose storage the caller prepared: dst->data sized for src's tensor, or dst->seq. */
crun_status value_copy(Tensor *dst, const Tensor *src);

#endif
