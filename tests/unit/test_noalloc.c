/* test_noalloc.c - a run allocates nothing once the session is planned: this executable
 * is linked with malloc, calloc, realloc and aligned_alloc wrapped (-Wl,--wrap), and
 * counts every call made while crun_session_run executes, on every thread. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/model.h"
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
static OnnxBuilder *mixed_builder(void)
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
    return b;
}

static crun_model *mixed_model(void)
{
    OnnxBuilder *b = mixed_builder();
    crun_model *m = ob_load(b);
    ob_free(b);
    return m;
}

/* The mixed model compiled (crun_compile_file) into a 64-byte aligned image in memory. */
static void *compiled_mixed(size_t *bytes, size_t *workspace)
{
    char onnx_path[] = "/tmp/crun_static_XXXXXX";
    int fd = mkstemp(onnx_path);
    OnnxBuilder *b = mixed_builder();
    size_t n = 0;
    uint8_t *data = ob_pack(b, &n);
    ob_free(b);
    bool ok = fd >= 0 && data && write(fd, data, n) == (ssize_t)n;
    free(data);
    if (fd >= 0)
        close(fd);
    char crun_path[64];
    snprintf(crun_path, sizeof crun_path, "%s.crun", onnx_path);
    crun_compile_info info;
    ok = ok && crun_compile_file(onnx_path, crun_path, NULL, &info) == CRUN_OK;
    unlink(onnx_path);
    FILE *f = ok ? fopen(crun_path, "rb") : NULL;
    void *image = f ? aligned_alloc(64, (info.file_bytes + 63) / 64 * 64) : NULL;
    ok = image && fread(image, 1, info.file_bytes, f) == info.file_bytes;
    if (f)
        fclose(f);
    unlink(crun_path);
    if (!ok) {
        free(image);
        return NULL;
    }
    *bytes = info.file_bytes;
    *workspace = info.workspace_bytes;
    return image;
}

TEST(compiled_layout_is_checked)
{
    /* A loaded compiled model re-derives its plan; a layout other than the file's (here
     * the file's record altered in memory) is refused, never run. */
    size_t bytes = 0, workspace = 0;
    void *image = compiled_mixed(&bytes, &workspace);
    CHECK_MSG(image, "compile: %s", crun_last_error());
    crun_model *m = NULL;
    CHECK_OK(crun_model_load_memory(image, bytes, &m));
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = 1;
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, &o, &s)); /* as compiled: accepted */
    crun_session_free(s);
    s = NULL;
    Graph *g = m->graph;
    int moved = -1;
    for (int v = 0; v < g->n_values && moved < 0; v++)
        if (g->compiled_offsets[v] != SIZE_MAX)
            moved = v;
    CHECK(moved >= 0);
    g->compiled_offsets[moved] += 64;
    CHECK(crun_session_create(m, &o, &s) == CRUN_ERR_INVALID_MODEL && !s);
    CHECK_MSG(strstr(crun_last_error(), "differs from the compiled one"), "%s", crun_last_error());
    crun_model_free(m);
    free(image);
}

TEST(static_mode_allocates_nothing)
{
    size_t bytes = 0, workspace = 0;
    void *image = compiled_mixed(&bytes, &workspace);
    CHECK_MSG(image && workspace > 0, "compile: %s", crun_last_error());
    float x[4 * 144];
    fill_random(x, 4 * 144, 9, 0, 1);
    int64_t d[4] = {1, 4, 12, 12};
    /* The same model run the usual way, for the expected outputs. */
    crun_model *m = mixed_model();
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = 1;
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, &o, &s));
    CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, d, x));
    CHECK_OK(crun_session_run(s));
    crun_tensor want;
    CHECK_OK(crun_session_get_output(s, 0, &want));
    uint8_t *buf = aligned_alloc(64, (workspace + 63) / 64 * 64);
    for (int round = 0; round < 2; round++) { /* the buffer is reusable once freed */
        crun_model *sm = NULL;
        crun_session *ss = NULL;
        atomic_store(&allocations, 0);
        atomic_store(&counting, 1);
        crun_status st = crun_static_open(image, bytes, buf, workspace, &sm, &ss);
        for (int i = 0; i < 5 && st == CRUN_OK; i++) {
            st = crun_session_set_input(ss, 0, CRUN_DTYPE_FLOAT, 4, d, x);
            if (st == CRUN_OK)
                st = crun_session_run(ss);
        }
        atomic_store(&counting, 0);
        CHECK_MSG(st == CRUN_OK, "static mode: %s", crun_last_error());
        CHECK_MSG(atomic_load(&allocations) == 0, "%d allocations opening and running in a static buffer",
                  atomic_load(&allocations));
        crun_tensor got;
        CHECK_OK(crun_session_get_output(ss, 0, &got));
        CHECK(got.size_bytes == want.size_bytes && memcmp(got.data, want.data, want.size_bytes) == 0);
        CHECK((uint8_t *)got.data >= buf && (uint8_t *)got.data < buf + workspace);
        crun_session_free(ss);
        crun_model_free(sm);
    }
    /* One byte short of what compile measured: refused, naming what it needs. */
    crun_model *sm = NULL;
    crun_session *ss = NULL;
    CHECK(crun_static_open(image, bytes, buf, workspace - 1, &sm, &ss) == CRUN_ERR_OUT_OF_MEMORY && !sm && !ss);
    CHECK_MSG(strstr(crun_last_error(), "too small"), "%s", crun_last_error());
    CHECK(crun_static_open(x, sizeof x, buf, workspace, &sm, &ss) == CRUN_ERR_INVALID_MODEL);
    free(buf);
    free(image);
    crun_session_free(s);
    crun_model_free(m);
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
