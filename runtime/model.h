/* model.h - what a loaded model holds (the object behind crun_model). */
#ifndef CRUN_MODEL_H
#define CRUN_MODEL_H

#include "runtime/graph.h"

typedef struct OpCount {
    char *op_type;
    int64_t count;
} OpCount;

typedef struct MetaEntry {
    char *key, *value;
} MetaEntry;

struct crun_model {
    Graph *graph;          /* optimised by the passes; read-only after load */
    char *source;          /* file name (or "<memory>") for messages */
    int64_t ir_version;
    int64_t opset;
    char *producer;
    MetaEntry *meta;
    int n_meta;
    /* Figures of the model as loaded, before passes change it. */
    OpCount *ops;
    int n_ops;
    int64_t node_count, param_count, param_bytes;
    void *proto; /* the unpacked ModelProto: initializers point into it */
    /* A compiled model (.crun): the image its weights and packed blocks point into, how
     * it is held (a mapping to unmap, a copy to free, or the caller's), and its plan's
     * figures from the header. */
    const void *image;
    size_t image_bytes;
    enum { IMAGE_NONE = 0, IMAGE_MAPPED, IMAGE_COPIED, IMAGE_BORROWED } image_kind;
    bool compiled;
    int compiled_isa, compiled_threads;
    size_t compiled_arena, compiled_workspace;
    struct HeapRegion *region; /* crun_static_open: the caller's buffer this model lives in */
};

/* Bytes of a static session's buffer used so far (its high-water mark); 0 otherwise. */
size_t session_workspace_used(const crun_session *s);

/* A compiled model over image, which stays the caller's (borrowed for the model's life). */
crun_status model_load_compiled_borrowed(const void *image, size_t size, crun_model **out);

/* Fills m->graph and the model fields from ONNX bytes. dir is the folder for external
 * data (NULL: external data is refused). */
crun_status onnx_load_model(const void *data, size_t size, const char *dir, struct crun_model *m, Diag *d);
/* Frees what onnx_load_model kept in m->proto. */
void onnx_free_proto(void *proto);
/* Calls fn for every node of the ModelProto as stored (subgraphs and local functions
 * too), before any expansion or pass: the ops a load of it parses. */
void onnx_list_ops(const void *proto, void (*fn)(void *ctx, const char *domain, const char *op), void *ctx);

/* Calls fn for the op of every node of m as crun runs it (after the passes, subgraphs
 * too) and, for an ONNX model, of every node as loaded: the ops a build must have to load
 * and run m. An op may be reported more than once. */
void model_list_ops(const crun_model *m, void (*fn)(void *ctx, const char *domain, const char *op), void *ctx);

#endif
