/* testutil.h - running small models through the public API in tests. */
#ifndef CRUN_TEST_UTIL_H
#define CRUN_TEST_UTIL_H

#include "harness.h"
#include "onnx_builder.h"

typedef struct TIn {
    crun_dtype dtype;
    int rank;
    int64_t dims[CRUN_MAX_RANK];
    const void *data;
} TIn;

/* Creates a session with `threads` threads, binds inputs in order and runs it. Returns the
 * session (free it) or NULL after printing crun_last_error. */
crun_session *run_inputs(const crun_model *m, int threads, int n, const TIn *in);
/* Loads b's model, runs it on one float input, copies output 0 into out (up to max floats);
 * returns the number of elements or -1 on failure (message printed). */
long run_f32(OnnxBuilder *b, const TIn *in, int n_in, float *out, long max, crun_tensor *shape);

/* Loads b's model, binds in[], runs with `threads` threads and copies output k (for k <
 * n_get) into dst[k] (at most max_bytes each; NULL entries skipped) and its shape into
 * shape[k] (shape may be NULL). Returns the first failing status (load, plan, bind or
 * run), with crun_last_error saying why. */
crun_status run_get(OnnxBuilder *b, int threads, const TIn *in, int n_in, int n_get, void *const *dst,
                    size_t max_bytes, crun_tensor *shape);

/* One pass of a loop over every kernel path, for isa from -1 to ISA_COUNT - 1: -1 runs
 * the reference kernels, then each ISA the CPU has becomes the limit (CRUN_ISA-style).
 * Returns false for an ISA the CPU lacks (skip that pass). kernels_select_done() restores
 * the defaults after the loop. */
bool kernels_select(int isa);
void kernels_select_done(void);

#endif
