/* test_noalloc.c - a run allocates nothing once the session is planned: this executable
 * is linked with malloc, calloc, realloc and aligned_alloc wrapped (-Wl,--wrap), and
 * counts every call made while crun_session_run executes, on every thread. */
#include <stdatomic.h>
#include <stdlib.h>

#include "testutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

static atomic_int counting, allocations;

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);

void *__wrap_malloc(size_t n)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
    return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
    return __real_aligned_alloc(a, n);
}

/* Conv + depthwise + pooling + Gemm + MatMul + shape ops: most kernels run here. */
static crun_model *mixed_model(void)
{
    OnnxBuilder *b = ob_new(13);
    int64_t dx[4] = {1, 4, 12, 12}, dw[4] = {8, 4, 3, 3}, ddw[4] = {8, 1, 3, 3}, dm[2] = {8, 5}, dshape[1] = {2};
    float w[288], wdw[72], wm[40];
    fill_random(w, 288, 1, -1, 1);
    fill_random(wdw, 72, 2, -1, 1);
    fill_random(wm, 40, 3, -1, 1);
    int64_t shape[2] = {8, -1}, perm[2] = {1, 0}, k2[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, NULL);
    ob_init_f32(b, "w", 4, dw, w);
    ob_init_f32(b, "wdw", 4, ddw, wdw);
    ob_init_f32(b, "wm", 2, dm, wm);
    ob_init_i64(b, "shape", 1, dshape, shape);
    ob_attr_ints(b, ob_node(b, "Conv", "x,w", "c"), "pads", pads, 4);
    ob_node(b, "Relu", "c", "r");
    Onnx__NodeProto *n = ob_node(b, "Conv", "r,wdw", "d");
    ob_attr_int(b, n, "group", 8);
    ob_attr_ints(b, n, "pads", pads, 4);
    ob_attr_ints(b, ob_node(b, "MaxPool", "d", "p"), "kernel_shape", k2, 2);
    ob_node(b, "Reshape", "p,shape", "flat");
    ob_attr_ints(b, ob_node(b, "Transpose", "flat", "t"), "perm", perm, 2);
    ob_node(b, "MatMul", "t,wm", "mm");
    ob_node(b, "Sigmoid", "mm", "s");
    ob_node(b, "Add", "s,mm", "a");
    ob_attr_int(b, ob_node(b, "Softmax", "a", "y"), "axis", -1);
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    return m;
}

TEST(runs_allocate_nothing)
{
    crun_model *m = mixed_model();
    CHECK_MSG(m, "%s", crun_last_error());
    float x[4 * 144];
    fill_random(x, 4 * 144, 9, 0, 1);
    int64_t d[4] = {1, 4, 12, 12};
    for (int threads = 1; threads <= 3; threads++) {
        crun_session_options o;
        crun_session_options_init(&o);
        o.threads = threads;
        crun_session *s = NULL;
        CHECK_OK(crun_session_create(m, &o, &s));
        CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, d, x));
        CHECK_OK(crun_session_run(s)); /* planned at create; this run is already steady */
        atomic_store(&allocations, 0);
        atomic_store(&counting, 1);
        crun_status st = CRUN_OK;
        for (int i = 0; i < 20 && st == CRUN_OK; i++) {
            st = crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, d, x);
            if (st == CRUN_OK)
                st = crun_session_run(s);
        }
        atomic_store(&counting, 0);
        crun_session_free(s);
        CHECK_OK(st);
        CHECK_MSG(atomic_load(&allocations) == 0, "%d allocations in 20 runs with %d threads",
                  atomic_load(&allocations), threads);
    }
    crun_model_free(m);
}

TEST(the_wrapper_does_count)
{
    /* Guards against a build where the wrapping silently does not apply: loading a model
     * must be seen allocating. */
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    crun_model *m = mixed_model();
    atomic_store(&counting, 0);
    crun_model_free(m);
    CHECK(m && atomic_load(&allocations) > 10);
}
