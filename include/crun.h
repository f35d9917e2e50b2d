/*
 * crun.h - the public C API of crun, an inference runtime for ONNX models.
 *
 * Typical use:
 *
 *     crun_model *model = NULL;
 *     if (crun_model_load_file("model.onnx", &model) != CRUN_OK) {
 *         fprintf(stderr, "%s\n", crun_last_error());
 *         return 2;
 *     }
 *     crun_session_options opts;
 *     crun_session_options_init(&opts);
 *     opts.threads = 2;
 *     crun_session *session = NULL;
 *     if (crun_session_create(model, &opts, &session) != CRUN_OK) { ... }
 *
 *     int64_t dims[4] = {1, 3, 224, 224};
 *     crun_session_set_input(session, 0, CRUN_DTYPE_FLOAT, 4, dims, pixels);
 *     if (crun_session_run(session) != CRUN_OK) { ... }
 *     crun_tensor out;
 *     crun_session_get_output(session, 0, &out);   // out.data is owned by the session
 *
 *     crun_session_free(session);
 *     crun_model_free(model);
 *
 * Conventions:
 * - Every call that can fail returns a crun_status. On failure, crun_last_error()
 *   returns a one-line message naming what is wrong (file, node, op, value).
 * - Objects are returned through out-parameters and freed with the matching _free.
 * - Ownership is stated on every function. "Borrowed" means crun reads the memory
 *   during the call only, unless the comment says for how long it keeps the pointer.
 * - A model is immutable after loading and may be shared by sessions on several
 *   threads. A session is used by one thread at a time.
 */
#ifndef CRUN_H
#define CRUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CRUN_BUILDING_LIBRARY)
#define CRUN_API __attribute__((visibility("default")))
#else
#define CRUN_API
#endif

/* Largest tensor rank crun accepts; models with higher ranks are rejected at load. */
#define CRUN_MAX_RANK 8

typedef enum crun_status {
    CRUN_OK = 0,
    CRUN_ERR_INVALID_ARGUMENT = 1, /* bad argument: NULL, index out of range, wrong dtype/shape */
    CRUN_ERR_IO = 2,               /* a file is missing or unreadable */
    CRUN_ERR_INVALID_MODEL = 3,    /* malformed or inconsistent model */
    CRUN_ERR_UNSUPPORTED = 4,      /* valid ONNX that crun does not implement */
    CRUN_ERR_OUT_OF_MEMORY = 5,    /* an allocation failed or a caller arena is too small */
    CRUN_ERR_RUNTIME = 6           /* failure while running (e.g. an index in the data out of range) */
} crun_status;

/* Element types; the values are ONNX's TensorProto.DataType numbers. */
typedef enum crun_dtype {
    CRUN_DTYPE_UNDEFINED = 0,
    CRUN_DTYPE_FLOAT = 1,
    CRUN_DTYPE_UINT8 = 2,
    CRUN_DTYPE_INT8 = 3,
    CRUN_DTYPE_UINT16 = 4,
    CRUN_DTYPE_INT16 = 5,
    CRUN_DTYPE_INT32 = 6,
    CRUN_DTYPE_INT64 = 7,
    CRUN_DTYPE_STRING = 8, /* data is an array of const char* (NUL-terminated UTF-8) */
    CRUN_DTYPE_BOOL = 9,   /* one byte per element, 0 or 1 */
    CRUN_DTYPE_FLOAT16 = 10,
    CRUN_DTYPE_DOUBLE = 11,
    CRUN_DTYPE_UINT32 = 12,
    CRUN_DTYPE_UINT64 = 13,
    CRUN_DTYPE_COMPLEX64 = 14,
    CRUN_DTYPE_COMPLEX128 = 15,
    CRUN_DTYPE_BFLOAT16 = 16
} crun_dtype;

typedef struct crun_model crun_model;
typedef struct crun_session crun_session;

/* What a value holds. ONNX models may take and return sequences of tensors, and
 * optional values that may hold nothing. */
typedef enum crun_value_kind {
    CRUN_VALUE_TENSOR = 0,
    CRUN_VALUE_SEQUENCE = 1, /* a list of tensors of one element type */
    CRUN_VALUE_NONE = 2      /* an optional value without a value */
} crun_value_kind;

/* Description of a model input or output. All pointers are owned by the model and
 * stay valid until crun_model_free. */
typedef struct crun_tensor_info {
    const char *name;
    crun_dtype dtype;                     /* the element type (of each item, for a sequence) */
    int32_t rank;                         /* -1 when the model does not say */
    int64_t dims[CRUN_MAX_RANK];          /* -1 where the dimension is symbolic or unknown */
    const char *dim_names[CRUN_MAX_RANK]; /* symbol of a symbolic dimension, else NULL */
    crun_value_kind kind;                 /* CRUN_VALUE_TENSOR or CRUN_VALUE_SEQUENCE */
    int32_t optional;                     /* 1 when the value may be absent (ONNX optional) */
} crun_tensor_info;

/* A view of a tensor held by a session. data is owned by the session and valid until the
 * next crun_session_set_input, crun_session_run or crun_session_free on that session. */
typedef struct crun_tensor {
    const char *name;
    crun_dtype dtype;
    int32_t rank;
    int64_t dims[CRUN_MAX_RANK];
    const void *data;
    size_t size_bytes;
} crun_tensor;

/* A value for a symbolic dimension, e.g. {"batch", 4}. */
typedef struct crun_dim_value {
    const char *name;
    int64_t value;
} crun_dim_value;

/* Which kernels run a session's model. */
typedef enum crun_backend {
    CRUN_BACKEND_NATIVE = 0,  /* crun's own kernels (the default) */
    CRUN_BACKEND_XNNPACK = 1, /* XNNPACK for the parts of the graph it supports (runs of float32
                                 convolutions, fully connected layers, pooling, elementwise ops),
                                 crun's kernels for the rest; needs a build with XNNPACK */
    CRUN_BACKEND_AUTO = 2     /* whichever of the two runs this model faster: each plan is built
                                 both ways and timed over a few runs while planning */
} crun_backend;

/* Whether this build can use backend (NATIVE and AUTO always can). */
CRUN_API int32_t crun_backend_available(crun_backend backend);

typedef struct crun_session_options {
    /* Worker threads including the caller; 0 means one per core. */
    int32_t threads;
    /* Caller-owned arena (may be NULL). When set, crun places every intermediate tensor
     * in it and allocates no activation memory itself; it must stay valid and untouched
     * by the caller until crun_session_free. It must be 64-byte aligned. If a plan needs
     * more than arena_bytes, the call that plans fails with CRUN_ERR_OUT_OF_MEMORY. */
    void *arena;
    size_t arena_bytes;
    /* Values for symbolic input dimensions, used to plan before inputs are bound
     * (default 1 for any symbol not listed). Borrowed during crun_session_create only. */
    const crun_dim_value *dims;
    size_t n_dims;
    /* NATIVE unless set (or unless the environment variable CRUN_BACKEND names another:
     * native, xnnpack or auto). A compiled model (.crun) always runs natively. */
    crun_backend backend;
} crun_session_options;

/* Memory figures of a session's current plan, in bytes. */
typedef struct crun_memory_info {
    size_t arena_bytes;       /* size of the planned arena */
    size_t lower_bound_bytes; /* most bytes alive at any one step: no plan can do better */
    size_t naive_bytes;       /* sum of all intermediate tensors, as if none were reused */
    size_t weight_bytes;      /* constant data held by the plan (weights, packed weights) */
} crun_memory_info;

/* One planned step (one kernel call). Strings are owned by the session and valid until
 * the next plan change or crun_session_free. */
typedef struct crun_step_info {
    const char *node_name;
    const char *op_type;   /* the op as planned, e.g. "Conv" (with fusions noted in fused) */
    const char *fused;     /* e.g. "Relu", "" when nothing was fused */
    const char *kernel;    /* kernel variant name */
    const char *isa;       /* "scalar", "avx2", ... */
    crun_dtype precision;  /* element type the kernel computes in */
    int32_t rank;          /* of output 0 */
    int64_t dims[CRUN_MAX_RANK];
    int64_t arena_offset;  /* of output 0; -1 when it is not in the arena */
    int64_t size_bytes;    /* of output 0 */
    int64_t flops;         /* estimated floating point operations (a multiply-add counts 2) */
    int64_t bytes_in;      /* bytes of the step's inputs, weights included (what it reads) */
    int32_t live_first;    /* output 0 holds its bytes from this step ... */
    int32_t live_last;     /* ... to this one (its last reader; the step count for a graph output) */
} crun_step_info;

/* Wall time of one step over the runs since profiling was turned on (or since the plan
 * last changed). */
typedef struct crun_step_profile {
    int64_t runs;
    double total_ms;      /* summed over those runs */
    double last_start_ms; /* in the last run: when the step began, from the run's start */
    double last_ms;       /* in the last run: how long it took */
} crun_step_profile;

/* Version string, e.g. "0.1.0". Static storage. */
CRUN_API const char *crun_version(void);

/* Message of the last failure on the calling thread. Static thread-local storage, valid
 * until the next crun call on this thread. Never NULL. */
CRUN_API const char *crun_last_error(void);

/* Name of a status or dtype. Static storage. */
CRUN_API const char *crun_status_name(crun_status status);
CRUN_API const char *crun_dtype_name(crun_dtype dtype);
/* Bytes per element (0 for UNDEFINED; sizeof(char*) for STRING). */
CRUN_API size_t crun_dtype_size(crun_dtype dtype);

/* Caps the memory crun takes for tensors, arenas, weights and model parsing, process-wide
 * (0 restores the default: three quarters of physical memory). A load or plan that would
 * go past it fails with CRUN_ERR_OUT_OF_MEMORY before allocating. */
CRUN_API void crun_set_memory_limit(size_t bytes);
CRUN_API size_t crun_memory_limit(void);
/* Bytes currently counted against the cap. */
CRUN_API size_t crun_memory_in_use(void);

/* ---- models -------------------------------------------------------------------- */

/* Loads, validates and optimises an ONNX model. path is borrowed. Tensors stored as
 * external data are read from files next to the model (paths must stay inside the
 * model's folder). On success *out is a new model owned by the caller; free it with
 * crun_model_free after every session created from it is freed. */
CRUN_API crun_status crun_model_load_file(const char *path, crun_model **out);

/* Like crun_model_load_file from size bytes at data (borrowed during the call only:
 * crun copies what it keeps). External data is refused, as there is no folder. */
CRUN_API crun_status crun_model_load_memory(const void *data, size_t size, crun_model **out);

/* Frees a model. NULL is allowed. */
CRUN_API void crun_model_free(crun_model *model);

CRUN_API int32_t crun_model_input_count(const crun_model *model);
CRUN_API int32_t crun_model_output_count(const crun_model *model);
/* Fills *out (strings owned by the model). Fails on an index out of range. */
CRUN_API crun_status crun_model_input_info(const crun_model *model, int32_t index, crun_tensor_info *out);
CRUN_API crun_status crun_model_output_info(const crun_model *model, int32_t index, crun_tensor_info *out);
/* Index of the input or output with this name (borrowed), or -1. */
CRUN_API int32_t crun_model_find_input(const crun_model *model, const char *name);
CRUN_API int32_t crun_model_find_output(const crun_model *model, const char *name);

/* Summary of the model as loaded (before any optimisation). Strings owned by the model. */
typedef struct crun_model_summary {
    int64_t ir_version;
    int64_t opset;          /* version of the default ONNX domain */
    const char *producer;   /* producer_name and producer_version */
    int64_t node_count;
    int64_t param_count;    /* elements in initializers and Constant nodes */
    int64_t param_bytes;
    int32_t op_type_count;  /* distinct op types, see crun_model_op_histogram */
} crun_model_summary;
CRUN_API void crun_model_get_summary(const crun_model *model, crun_model_summary *out);
/* The index-th distinct op type of the loaded model (in order of first use) and how many
 * nodes use it. *op_type is owned by the model. */
CRUN_API crun_status crun_model_op_histogram(const crun_model *model, int32_t index,
                                             const char **op_type, int64_t *count);
/* Value of metadata_props[key] of the model, or NULL. Owned by the model. */
CRUN_API const char *crun_model_metadata(const crun_model *model, const char *key);

/* ---- sessions ------------------------------------------------------------------ */

/* Fills *options with defaults: all cores, crun-owned arena, symbolic dims = 1. */
CRUN_API void crun_session_options_init(crun_session_options *options);

/* Creates a session and plans the model for the shapes given by options->dims (the plan
 * is redone when bound inputs have other shapes). model is borrowed for the session's
 * whole life. options may be NULL (defaults) and is borrowed during the call only. On
 * success *out is owned by the caller; free it with crun_session_free. */
CRUN_API crun_status crun_session_create(const crun_model *model, const crun_session_options *options,
                                         crun_session **out);

/* Bytes of arena the model needs for these options, without creating a session, so that
 * a caller can size its own buffer. */
CRUN_API crun_status crun_model_arena_bytes(const crun_model *model, const crun_session_options *options,
                                            size_t *bytes);

/* Binds input index to caller data of this dtype and shape. data is borrowed: crun keeps
 * the pointer and reads it during the next crun_session_run only, so it must stay valid
 * until then. Fails (CRUN_ERR_INVALID_ARGUMENT) when dtype or a fixed dimension does not
 * match the model, or a symbolic dimension disagrees with another input's. */
CRUN_API crun_status crun_session_set_input(crun_session *session, int32_t index, crun_dtype dtype,
                                            int32_t rank, const int64_t *dims, const void *data);

/* Binds a sequence input to n tensors (items[i].name is ignored; data borrowed like
 * crun_session_set_input's, until the next run). */
CRUN_API crun_status crun_session_set_input_sequence(crun_session *session, int32_t index, int32_t n,
                                                     const crun_tensor *items);
/* Binds an optional input to "no value". */
CRUN_API crun_status crun_session_set_input_none(crun_session *session, int32_t index);

/* Plans now for the bound input shapes (defaults for inputs not bound) unless the current
 * plan already fits them; lets a caller inspect the plan (step and memory info) or see a
 * shape error before the first run. crun_session_create plans too, but when the default
 * dims do not suit the model (a 1x1 image for a CNN) it leaves planning to this call or
 * to the first run. */
CRUN_API crun_status crun_session_plan(crun_session *session);

/* Runs the model on the bound inputs. Inputs never bound are zero. If input shapes
 * changed since the last run, the plan is rebuilt first (this allocates); otherwise the
 * run allocates nothing. */
CRUN_API crun_status crun_session_run(crun_session *session);

/* View of output index after a successful run (see crun_tensor for how long it lives).
 * Fails for an output that is a sequence or holds nothing. For a STRING tensor, data is
 * an array of const char*. */
CRUN_API crun_status crun_session_get_output(const crun_session *session, int32_t index, crun_tensor *out);

/* What output index holds after a run: a tensor (read it with crun_session_get_output),
 * a sequence of *count tensors (crun_session_get_output_item), or nothing. */
CRUN_API crun_status crun_session_get_output_kind(const crun_session *session, int32_t index, crun_value_kind *kind,
                                                  int32_t *count);
CRUN_API crun_status crun_session_get_output_item(const crun_session *session, int32_t index, int32_t item,
                                                  crun_tensor *out);

CRUN_API crun_status crun_session_memory_info(const crun_session *session, crun_memory_info *out);
CRUN_API int32_t crun_session_step_count(const crun_session *session);
CRUN_API crun_status crun_session_step_info(const crun_session *session, int32_t index, crun_step_info *out);
/* Per-step timing, off by default. On, each run reads a monotonic clock once per step
 * (counters are allocated here and at re-plans, never while running); off, a run pays
 * one branch per step. Turning it on resets the counters. */
CRUN_API crun_status crun_session_set_profiling(crun_session *session, int32_t on);
/* The counters of step index; CRUN_ERR_INVALID_ARGUMENT when profiling is off or there
 * is no such step. */
CRUN_API crun_status crun_session_step_profile(const crun_session *session, int32_t index, crun_step_profile *out);
/* How many plans the session has built: one at creation (or first run), one more each
 * time bound input shapes change to shapes it has not planned for just before. */
CRUN_API int64_t crun_session_plan_count(const crun_session *session);
/* Worker threads the session uses (after resolving 0 = all cores). */
CRUN_API int32_t crun_session_threads(const crun_session *session);

/* Frees a session (and its arena unless the caller owns it). NULL is allowed. */
CRUN_API void crun_session_free(crun_session *session);

/* ---- post-training quantization ---- */

typedef enum crun_calib_method {
    CRUN_CALIB_MINMAX = 0,     /* the range seen */
    CRUN_CALIB_PERCENTILE = 1, /* |x| clipped at a percentile of what was seen */
    CRUN_CALIB_ENTROPY = 2     /* |x| clipped where the KL divergence of 8 bits is least */
} crun_calib_method;

typedef struct crun_quantize_options {
    const char *calib_dir;     /* .npy files, one sample per file in name order (a model with
                                * k inputs takes k consecutive files per sample); NULL: random */
    int32_t calib_random;      /* samples to draw when calib_dir is NULL (uniform in [-1, 1]
                                * for float inputs, [0, 10) for integer ones); default 16 */
    crun_calib_method method;  /* default CRUN_CALIB_MINMAX */
    float percentile;          /* for CRUN_CALIB_PERCENTILE; default 99.99 */
    int32_t per_channel;       /* int8 weights per output channel (opset >= 13); default 1 */
    const char *const *exclude;/* node names left in float (borrowed for the call) */
    int32_t n_exclude;
    int32_t threads;           /* for the calibration runs; 0 = all cores */
    int32_t progress;          /* draw a progress bar on stderr when it is a terminal */
    const crun_dim_value *dims;/* values for symbolic input dims (random inputs and planning;
                                * default 1); borrowed for the call */
    int32_t n_dims;
    int32_t weight_bits;       /* 0 (default): the int8 QDQ model above. 4 (or 2, 8): weight-only
                                * block quantization instead: MatMul/Gemm weights become
                                * com.microsoft MatMulNBits codes with a float16 scale and a zero
                                * point per block; no calibration, activations stay float */
    int32_t block_size;        /* weights per block for weight_bits; default 32 */
    float sensitivity;         /* > 0: mixed precision. Each int8 node is tried alone on (up to 16
                                * of) the calibration samples, and the fewest most-sensitive ones
                                * stay float so that the int8 model's outputs differ from the
                                * float model's by at most this relative RMS error there (e.g.
                                * 0.05); 0 (default): every node that can be int8 is */
} crun_quantize_options;

CRUN_API void crun_quantize_options_init(crun_quantize_options *options);
/* Calibrates model_path on the options' samples and writes a QDQ model to out_path:
 * QuantizeLinear/DequantizeLinear (uint8, asymmetric) on the inputs and outputs of Conv,
 * MatMul, Gemm, Add and GlobalAveragePool, and after MaxPool, Flatten and Reshape (which
 * keep their input's parameters), int8 symmetric weights and int32 biases under
 * DequantizeLinear, a standard model other runtimes run too. Reads and writes only the
 * two files (and the calibration directory); options may be NULL for the defaults. */
CRUN_API crun_status crun_quantize_file(const char *model_path, const char *out_path,
                                        const crun_quantize_options *options);

/* Writes model_path with every float32 initializer of 16 or more values stored as
 * float16 (saturating at +-65504) and cast back to float32 by a Cast node: about half the
 * file, the same ops and types for every other node. crun widens the weights at load. */
CRUN_API crun_status crun_convert_fp16_file(const char *model_path, const char *out_path);

/* ---- compiled models ---- */

/* A compiled model (.crun) is a model after crun's optimisations, planned for fixed input
 * shapes, a thread count and an instruction set, with its weights already packed for the
 * kernels chosen. crun_model_load_file maps it and uses weights and packed blocks where
 * they lie (no parsing, no copying); crun_model_load_memory copies it first. It is tied to
 * the crun build and architecture that wrote it: another build refuses it with a message,
 * as does a CPU without its instruction set. */
typedef struct crun_compile_options {
    /* Values for the symbolic input dims (default 1 for any not listed): fixed in the file.
     * Borrowed during the call. */
    const crun_dim_value *dims;
    size_t n_dims;
    int32_t threads;  /* threads the plan is made for; default 1 (other counts re-plan) */
    const char *isa;  /* "scalar", "avx2", "avx512", "avx512vnni", "neon", "neondot", "neonfp16";
                       * NULL: the best this CPU has (or CRUN_ISA allows) */
} crun_compile_options;

/* What a compiled model needs and holds, in bytes. */
typedef struct crun_compile_info {
    size_t arena_bytes;     /* the arena its plan needs (a caller arena of this size suffices) */
    size_t workspace_bytes; /* one caller buffer holding everything (crun_static_open); 0 if unknown */
    size_t file_bytes;
    size_t packed_bytes;    /* of that, weights packed for the kernels */
    int32_t threads;
    const char *isa;        /* static storage */
} crun_compile_info;

CRUN_API void crun_compile_options_init(crun_compile_options *options);

/* Loads the ONNX model at model_path, plans it as the options say and writes the compiled
 * model to out_path. options may be NULL (defaults); info, when not NULL, receives the
 * figures of the written file. Paths are borrowed. A compiled model plans and runs at the
 * ISA it was compiled for wherever it is loaded (never above it), so the kernels and
 * packed weights in the file are the ones used. */
CRUN_API crun_status crun_compile_file(const char *model_path, const char *out_path,
                                       const crun_compile_options *options, crun_compile_info *info);

/* The figures of a loaded compiled model (CRUN_ERR_INVALID_ARGUMENT for an ONNX one). */
CRUN_API crun_status crun_model_compiled_info(const crun_model *model, crun_compile_info *info);

/* Static mode: a compiled model and one session of it (one thread) placed entirely in buf,
 * a caller buffer of buf_bytes (crun compile and crun info print the bytes a model needs:
 * "workspace"). Neither this call nor the runs of the session take memory from the heap.
 * image (a .crun file's bytes, 64-byte aligned, e.g. in flash) and buf are borrowed until
 * crun_model_free; both must stay untouched meanwhile. Free the session, then the model,
 * as usual; buf may be reused after that. CRUN_ERR_OUT_OF_MEMORY when buf is too small.
 * (The first crun call of a process detects the CPU through cpuinfo, which allocates
 * once; builds without cpuinfo have no such step.) */
CRUN_API crun_status crun_static_open(const void *image, size_t image_bytes, void *buf, size_t buf_bytes,
                                      crun_model **model, crun_session **session);

/* Loading a compiled model checks its header and tables (checksums and every record) but
 * does not read the weights, so that it costs no pass over the file. This checks the
 * weights' checksum too: CRUN_ERR_INVALID_MODEL when they were damaged. An ONNX model has
 * no checksum: CRUN_OK. */
CRUN_API crun_status crun_model_verify(const crun_model *model);

#ifdef __cplusplus
}
#endif

#endif /* CRUN_H */
