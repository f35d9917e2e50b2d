/* test_concurrency.c - one loaded model, several sessions on several threads at once
 * (each with its own worker pool): every output bit-identical to a single-threaded run.
 * Bounded: 4 threads x 30 runs of a small CNN with re-planning between two shapes. */
#include <pthread.h>
#include <stdlib.h>

#include "testutil.h"

#define WORKERS 4
#define RUNS 30

static crun_model *model;
static float inputs[2][3 * 20 * 20];
static float *reference[2];
static size_t ref_bytes[2];

static crun_model *cnn(void)
{
    OnnxBuilder *b = ob_new(13);
    int64_t dx[4] = {-1, 3, -1, -1}, dw[4] = {16, 3, 3, 3}, dd[4] = {16, 1, 3, 3}, dfc[2] = {16, 10};
    const char *syms[4] = {"n", NULL, "h", "w"};
    float w[16 * 27], wd[16 * 9], fc[160];
    fill_random(w, 16 * 27, 1, -0.5f, 0.5f);
    fill_random(wd, 16 * 9, 2, -0.5f, 0.5f);
    fill_random(fc, 160, 3, -0.5f, 0.5f);
    int64_t pads[4] = {1, 1, 1, 1};
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, syms);
    ob_init_f32(b, "w", 4, dw, w);
    ob_init_f32(b, "wd", 4, dd, wd);
    ob_init_f32(b, "fc", 2, dfc, fc);
    ob_attr_ints(b, ob_node(b, "Conv", "x,w", "c"), "pads", pads, 4);
    ob_node(b, "Relu", "c", "r");
    Onnx__NodeProto *n = ob_node(b, "Conv", "r,wd", "d");
    ob_attr_int(b, n, "group", 16);
    ob_attr_ints(b, n, "pads", pads, 4);
    ob_node(b, "GlobalAveragePool", "d", "g");
    ob_node(b, "Flatten", "g", "f");
    ob_node(b, "MatMul", "f,fc", "l");
    ob_node(b, "Softmax", "l", "y");
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    return m;
}

static const int64_t shapes[2][4] = {{1, 3, 20, 20}, {2, 3, 10, 15}};

static float *run_once(crun_session *s, int which, size_t *bytes)
{
    if (crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, shapes[which], inputs[which]) != CRUN_OK ||
        crun_session_run(s) != CRUN_OK)
        return NULL;
    crun_tensor t;
    crun_session_get_output(s, 0, &t);
    float *copy = malloc(t.size_bytes);
    memcpy(copy, t.data, t.size_bytes);
    *bytes = t.size_bytes;
    return copy;
}

static void *worker(void *arg)
{
    intptr_t id = (intptr_t)arg, mismatches = 0;
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = 1 + (int)(id % 2);
    crun_session *s = NULL;
    if (crun_session_create(model, &o, &s) != CRUN_OK)
        return (void *)(intptr_t)RUNS;
    for (int r = 0; r < RUNS; r++) {
        int which = (int)((r + id) % 2); /* alternate shapes: every session re-plans often */
        size_t bytes = 0;
        float *out = run_once(s, which, &bytes);
        mismatches += !out || bytes != ref_bytes[which] || memcmp(out, reference[which], bytes) != 0;
        free(out);
    }
    crun_session_free(s);
    return (void *)mismatches;
}

TEST(sessions_on_many_threads_match_one_thread)
{
    model = cnn();
    CHECK_MSG(model, "%s", crun_last_error());
    fill_random(inputs[0], 3 * 400, 1, 0, 1);
    fill_random(inputs[1], 2 * 3 * 150, 2, 0, 1);
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = 1;
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(model, &o, &s));
    for (int i = 0; i < 2; i++)
        reference[i] = run_once(s, i, &ref_bytes[i]);
    crun_session_free(s);
    CHECK(reference[0] && reference[1]);
    pthread_t th[WORKERS];
    for (intptr_t i = 0; i < WORKERS; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    intptr_t total = 0;
    for (int i = 0; i < WORKERS; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (intptr_t)r;
    }
    free(reference[0]);
    free(reference[1]);
    crun_model_free(model);
    CHECK_MSG(total == 0, "%ld of %d concurrent runs differed from the single-threaded result", (long)total,
              WORKERS * RUNS);
}
