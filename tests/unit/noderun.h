/* noderun.h - testing one op through the public API: a one-node model made from Args,
 * loaded, planned and run, and checks that free the run before a failing test returns. */
#ifndef CRUN_TEST_NODERUN_H
#define CRUN_TEST_NODERUN_H

#include "testutil.h"

/* One input of the node under test. name NULL: an omitted optional input; constant: an
 * initializer (its value is known while planning), else a graph input bound at run. */
typedef struct Arg {
    const char *name;
    crun_dtype dtype;
    int rank;
    int64_t dims[CRUN_MAX_RANK];
    const void *data;
    bool constant;
} Arg;

#define NODERUN_MAX_OUT 5

typedef struct Run {
    OnnxBuilder *b;
    Onnx__NodeProto *node;
    const Arg *args;
    int n_args, n_out;
    crun_model *m;
    crun_session *s;
    crun_tensor y[NODERUN_MAX_OUT];
} Run;

/* Starts a one-node model op(args) -> outs (comma-separated; empty entries are omitted
 * optional outputs; NULL: "y"). Add attributes to r->node. */
void node_model(Run *r, int opset, const char *op, const Arg *args, int n_args, const char *outs);
/* Loads, plans, binds the graph inputs in order and runs with `threads` threads; the
 * outputs are in r->y. Returns the first failure (load, plan, bind or run). */
crun_status run_threads(Run *r, int threads);
/* run_threads with 2 threads. */
crun_status run(Run *r);
void run_free(Run *r);

bool shape_is(const crun_tensor *t, int rank, const int64_t *dims);

/* Frees the run before a failing check returns. */
#define RCHECK(r, cond) \
    do { \
        if (!(cond)) { \
            harness_fail(__FILE__, __LINE__, "%s", #cond); \
            run_free(r); \
            return; \
        } \
    } while (0)
#define RCHECK_MSG(r, cond, ...) \
    do { \
        if (!(cond)) { \
            harness_fail(__FILE__, __LINE__, __VA_ARGS__); \
            run_free(r); \
            return; \
        } \
    } while (0)
#define RCHECK_STATUS(r, expr, want) \
    do { \
        crun_status st_ = (expr); \
        if (st_ != (want)) { \
            harness_fail(__FILE__, __LINE__, "%s -> %s, expected %s (%s)", #expr, crun_status_name(st_), \
                         crun_status_name(want), crun_last_error()); \
            run_free(r); \
            return; \
        } \
    } while (0)
#define RCHECK_OK(r, expr) \
    do { \
        crun_status st_ = (expr); \
        if (st_ != CRUN_OK) { \
            harness_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr, crun_status_name(st_), crun_last_error()); \
            run_free(r); \
            return; \
        } \
    } while (0)

#endif
