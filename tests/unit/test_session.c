/* test_session.c - the public API: threads, re-planning, caller arenas, input checks. */
#include <stdlib.h>

#include "testutil.h"

/* A small CNN: conv(3->8)+BN+relu, depthwise, maxpool, pointwise, global pool, gemm, softmax;
 * input x is [N,3,H,W] with symbolic N, H and W. */
static crun_model *small_cnn(void)
{
    OnnxBuilder *b = ob_new(13);
    int64_t dx[4] = {-1, 3, -1, -1};
    const char *syms[4] = {"batch", NULL, "height", "width"};
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, syms);
    float w1[8 * 3 * 9], w2[8 * 9], w3[16 * 8], bn[4][8], fc[16 * 10], fcb[10];
    fill_random(w1, 216, 1, -0.5f, 0.5f);
    fill_random(w2, 72, 2, -0.5f, 0.5f);
    fill_random(w3, 128, 3, -0.5f, 0.5f);
    for (int i = 0; i < 4; i++)
        fill_random(bn[i], 8, 4 + i, i == 3 ? 0.5f : -0.5f, 1.0f);
    fill_random(fc, 160, 9, -0.5f, 0.5f);
    fill_random(fcb, 10, 10, -0.1f, 0.1f);
    int64_t d1[4] = {8, 3, 3, 3}, d2[4] = {8, 1, 3, 3}, d3[4] = {16, 8, 1, 1}, d8[1] = {8}, dfc[2] = {10, 16},
            d10[1] = {10};
    ob_init_f32(b, "w1", 4, d1, w1);
    ob_init_f32(b, "w2", 4, d2, w2);
    ob_init_f32(b, "w3", 4, d3, w3);
    ob_init_f32(b, "s", 1, d8, bn[0]);
    ob_init_f32(b, "bb", 1, d8, bn[1]);
    ob_init_f32(b, "m", 1, d8, bn[2]);
    ob_init_f32(b, "v", 1, d8, bn[3]);
    ob_init_f32(b, "fc", 2, dfc, fc);
    ob_init_f32(b, "fcb", 1, d10, fcb);
    int64_t p1[4] = {1, 1, 1, 1}, k2[2] = {2, 2};
    ob_attr_ints(b, ob_node(b, "Conv", "x,w1", "c1"), "pads", p1, 4);
    ob_node(b, "BatchNormalization", "c1,s,bb,m,v", "n1");
    ob_node(b, "Relu", "n1", "r1");
    Onnx__NodeProto *dw = ob_node(b, "Conv", "r1,w2", "c2");
    ob_attr_int(b, dw, "group", 8);
    ob_attr_ints(b, dw, "pads", p1, 4);
    ob_attr_ints(b, ob_node(b, "MaxPool", "c2", "p2"), "kernel_shape", k2, 2);
    ob_node(b, "Conv", "p2,w3", "c3");
    ob_node(b, "Relu", "c3", "r3");
    ob_node(b, "GlobalAveragePool", "r3", "g");
    ob_node(b, "Flatten", "g", "f");
    ob_attr_int(b, ob_node(b, "Gemm", "f,fc,fcb", "logits"), "transB", 1);
    ob_node(b, "Softmax", "logits", "prob");
    ob_output(b, "prob");
    crun_model *m = ob_load(b);
    ob_free(b);
    return m;
}

static float *run_copy(crun_model *m, int threads, const float *x, int64_t n, int64_t h, int64_t w, long *count)
{
    TIn in = {CRUN_DTYPE_FLOAT, 4, {n, 3, h, w}, x};
    crun_session *s = run_inputs(m, threads, 1, &in);
    if (!s)
        return NULL;
    crun_tensor t;
    float *out = NULL;
    if (crun_session_get_output(s, 0, &t) == CRUN_OK && (out = malloc(t.size_bytes)) != NULL) {
        memcpy(out, t.data, t.size_bytes);
        *count = (long)(t.size_bytes / 4);
    }
    crun_session_free(s);
    return out;
}

TEST(outputs_identical_for_every_thread_count)
{
    crun_model *m = small_cnn();
    CHECK(m);
    float x[2 * 3 * 19 * 23];
    fill_random(x, 2 * 3 * 19 * 23, 42, 0, 1);
    long n1 = 0, nk = 0;
    float *one = run_copy(m, 1, x, 2, 19, 23, &n1);
    CHECK(one && n1 == 20);
    for (int t = 2; t <= 5; t++) {
        float *other = run_copy(m, t, x, 2, 19, 23, &nk);
        bool same = other && nk == n1 && memcmp(one, other, (size_t)n1 * 4) == 0;
        free(other);
        CHECK_MSG(same, "%d threads differ from 1 thread", t);
    }
    free(one);
    crun_model_free(m);
}

TEST(replans_when_shapes_change_and_memory_stays_bounded)
{
    crun_model *m = small_cnn();
    CHECK(m);
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, NULL, &s));
    int64_t shapes[][3] = {{1, 16, 16}, {3, 16, 16}, {1, 33, 9}, {3, 16, 16}, {1, 16, 16}, {3, 16, 16}};
    static float x[3 * 3 * 33 * 16];
    fill_random(x, 3 * 3 * 33 * 16, 5, 0, 1);
    size_t arena_max = 0;
    for (int i = 0; i < 6; i++) {
        int64_t d[4] = {shapes[i][0], 3, shapes[i][1], shapes[i][2]};
        CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, d, x));
        CHECK_OK(crun_session_run(s));
        crun_tensor t;
        CHECK_OK(crun_session_get_output(s, 0, &t));
        CHECK(t.rank == 2 && t.dims[0] == shapes[i][0] && t.dims[1] == 10);
        /* Each output row is a probability distribution, and batch rows are independent. */
        for (int r = 0; r < t.dims[0]; r++) {
            double sum = 0;
            for (int k = 0; k < 10; k++)
                sum += ((const float *)t.data)[r * 10 + k];
            CHECK_NEAR(sum, 1.0, 1e-5);
        }
        long n1;
        float *single = run_copy(m, 1, x, 1, shapes[i][1], shapes[i][2], &n1);
        CHECK(single);
        CHECK_FLOATS((const float *)t.data, single, 10, 1e-5, 1e-6);
        free(single);
        crun_memory_info mi;
        CHECK_OK(crun_session_memory_info(s, &mi));
        if (i < 3)
            arena_max = mi.arena_bytes > arena_max ? mi.arena_bytes : arena_max;
        else
            CHECK_MSG(mi.arena_bytes <= arena_max, "arena grew on a shape seen before");
    }
    crun_session_free(s);
    crun_model_free(m);
}

TEST(caller_arena_exact_size_works_and_too_small_fails)
{
    crun_model *m = small_cnn();
    CHECK(m);
    crun_dim_value dims[3] = {{"batch", 1}, {"height", 12}, {"width", 12}};
    crun_session_options o;
    crun_session_options_init(&o);
    o.dims = dims;
    o.n_dims = 3;
    o.threads = 2;
    size_t need = 0;
    CHECK_OK(crun_model_arena_bytes(m, &o, &need));
    CHECK(need > 0);
    void *arena = aligned_alloc(64, (need + 63) / 64 * 64);
    o.arena = arena;
    o.arena_bytes = need;
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, &o, &s));
    float x[3 * 12 * 12];
    fill_random(x, 3 * 144, 3, 0, 1);
    int64_t d[4] = {1, 3, 12, 12};
    CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, d, x));
    CHECK_OK(crun_session_run(s));
    crun_tensor t;
    CHECK_OK(crun_session_get_output(s, 0, &t));
    bool inside = (const char *)t.data >= (const char *)arena && (const char *)t.data < (const char *)arena + need;
    /* A bigger input needs more than the caller gave: a clear error, no crash. */
    int64_t big[4] = {1, 3, 40, 40};
    static float xb[3 * 40 * 40];
    CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, big, xb));
    crun_status st = crun_session_run(s);
    crun_session_free(s);
    o.arena_bytes = need / 2;
    crun_status st2 = crun_session_create(m, &o, &s);
    free(arena);
    crun_model_free(m);
    CHECK_MSG(inside, "output is not in the caller's arena");
    CHECK(st == CRUN_ERR_OUT_OF_MEMORY);
    CHECK(st2 == CRUN_ERR_OUT_OF_MEMORY && strstr(crun_last_error(), "bytes of arena"));
}

TEST(bad_inputs_are_rejected_with_a_message)
{
    crun_model *m = small_cnn();
    CHECK(m);
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, NULL, &s));
    float x[3 * 8 * 8] = {0};
    int64_t wrong_c[4] = {1, 4, 8, 8}, ok[4] = {1, 3, 8, 8};
    CHECK_STATUS(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, wrong_c, x), CRUN_ERR_INVALID_ARGUMENT);
    CHECK(strstr(crun_last_error(), "'x'") && strstr(crun_last_error(), "dim 1 is 4"));
    CHECK_STATUS(crun_session_set_input(s, 0, CRUN_DTYPE_INT64, 4, ok, x), CRUN_ERR_INVALID_ARGUMENT);
    CHECK(strstr(crun_last_error(), "float32"));
    CHECK_STATUS(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 3, ok, x), CRUN_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(crun_session_set_input(s, 1, CRUN_DTYPE_FLOAT, 4, ok, x), CRUN_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, ok, NULL), CRUN_ERR_INVALID_ARGUMENT);
    crun_tensor t;
    CHECK_STATUS(crun_session_get_output(s, 0, &t), CRUN_ERR_INVALID_ARGUMENT);
    /* Too small for the network (3x3 conv, 2x2 pool on 1x1): planning fails cleanly. */
    int64_t tiny[4] = {1, 3, 1, 1};
    CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, tiny, x));
    CHECK_STATUS(crun_session_run(s), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "MaxPool"));
    crun_session_free(s);
    crun_model_free(m);
}

TEST(symbolic_dims_must_agree_between_inputs)
{
    OnnxBuilder *b = ob_new(13);
    int64_t d[2] = {-1, 4};
    const char *syms[2] = {"n", NULL};
    ob_input(b, "a", CRUN_DTYPE_FLOAT, 2, d, syms);
    ob_input(b, "b", CRUN_DTYPE_FLOAT, 2, d, syms);
    ob_node(b, "Add", "a,b", "y");
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK(m);
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, NULL, &s));
    float x[12] = {0};
    int64_t two[2] = {2, 4}, three[2] = {3, 4};
    CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 2, two, x));
    CHECK_OK(crun_session_set_input(s, 1, CRUN_DTYPE_FLOAT, 2, three, x));
    CHECK_STATUS(crun_session_run(s), CRUN_ERR_INVALID_ARGUMENT);
    CHECK(strstr(crun_last_error(), "(n)"));
    crun_session_free(s);
    crun_model_free(m);
}

TEST(model_introspection)
{
    crun_model *m = small_cnn();
    CHECK(m);
    CHECK(crun_model_input_count(m) == 1 && crun_model_output_count(m) == 1);
    crun_tensor_info info;
    CHECK_OK(crun_model_input_info(m, 0, &info));
    CHECK(!strcmp(info.name, "x") && info.rank == 4 && info.dims[0] == -1 && !strcmp(info.dim_names[0], "batch") &&
          info.dims[1] == 3);
    CHECK(crun_model_find_input(m, "x") == 0 && crun_model_find_input(m, "nope") == -1);
    crun_model_summary sum;
    crun_model_get_summary(m, &sum);
    CHECK(sum.node_count == 11 && sum.opset == 13);
    CHECK(sum.param_count == 216 + 72 + 128 + 32 + 160 + 10);
    const char *op;
    int64_t count;
    CHECK_OK(crun_model_op_histogram(m, 0, &op, &count));
    CHECK(!strcmp(op, "Conv") && count == 3);
    crun_dim_value dims[2] = {{"height", 16}, {"width", 16}};
    crun_session_options o;
    crun_session_options_init(&o);
    o.dims = dims;
    o.n_dims = 2;
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, &o, &s));
    /* BatchNorm and both Relus are fused away: 9 steps remain at most. */
    int steps = crun_session_step_count(s);
    CHECK(steps > 0 && steps <= 9);
    crun_step_info si;
    CHECK_OK(crun_session_step_info(s, 0, &si));
    CHECK(!strcmp(si.op_type, "Conv") && strstr(si.fused, "BatchNormalization") && strstr(si.fused, "Relu"));
    CHECK(si.rank == 4 && si.dims[1] == 8 && si.dims[2] == 16 && si.flops == 2LL * 8 * 16 * 16 * 27);
    crun_memory_info mi;
    CHECK_OK(crun_session_memory_info(s, &mi));
    CHECK(mi.lower_bound_bytes <= mi.arena_bytes && mi.arena_bytes <= mi.naive_bytes);
    crun_session_free(s);
    crun_model_free(m);
}

TEST(planning_waits_for_real_shapes_when_defaults_do_not_fit)
{
    crun_model *m = small_cnn();
    CHECK(m);
    crun_session *s = NULL;
    /* Default dims (1x1 image) cannot go through the 2x2 max pool: creating still works. */
    CHECK_OK(crun_session_create(m, NULL, &s));
    CHECK(crun_session_step_count(s) == 0);
    CHECK_STATUS(crun_session_plan(s), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "MaxPool"));
    float x[3 * 10 * 10] = {0};
    int64_t d[4] = {1, 3, 10, 10};
    CHECK_OK(crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, d, x));
    CHECK_OK(crun_session_plan(s));
    CHECK(crun_session_step_count(s) > 0);
    CHECK_OK(crun_session_run(s));
    crun_session_free(s);
    /* With a caller-owned arena the plan is needed to know the size: create fails. */
    static _Alignas(64) unsigned char arena[1 << 16];
    crun_session_options o;
    crun_session_options_init(&o);
    o.arena = arena;
    o.arena_bytes = sizeof arena;
    CHECK_STATUS(crun_session_create(m, &o, &s), CRUN_ERR_INVALID_MODEL);
    crun_model_free(m);
}

/* Concat over leading unit dims: producers read by the Concat alone write straight into
 * their slice of its output (no copy); a producer with another reader keeps its own
 * buffer. Outputs match the direct computation either way, and with batch 2 (no slices). */
TEST(concat_inputs_written_in_place)
{
    for (int64_t batch = 1; batch <= 2; batch++) {
        int64_t dx[4] = {batch, 3, 5, 7};
        OnnxBuilder *b = ob_new(13);
        ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, NULL);
        ob_node(b, "Relu", "x", "a");
        ob_node(b, "Sigmoid", "x", "s");
        ob_node(b, "Exp", "x", "e");
        ob_attr_int(b, ob_node(b, "Concat", "a,s,e", "y"), "axis", 1);
        ob_node(b, "Abs", "s", "z"); /* a second reader of s: s stays where it is */
        ob_node(b, "Neg", "x", "w"); /* x's last reader, so no producer above works in place on x */
        ob_output(b, "y");
        ob_output(b, "z");
        ob_output(b, "w");
        crun_model *m = ob_load(b);
        ob_free(b);
        CHECK(m);
        float x[2 * 3 * 5 * 7];
        fill_random(x, 2 * 3 * 5 * 7, 5, -2, 2);
        TIn in = {CRUN_DTYPE_FLOAT, 4, {batch, 3, 5, 7}, x};
        crun_session *s = run_inputs(m, 1, 1, &in);
        CHECK(s);
        crun_tensor y, z;
        CHECK_OK(crun_session_get_output(s, 0, &y));
        CHECK_OK(crun_session_get_output(s, 1, &z));
        const float *yv = y.data, *zv = z.data;
        bool ok = true;
        for (int64_t n = 0; n < batch && ok; n++)
            for (int part = 0; part < 3 && ok; part++)
                for (int i = 0; i < 105 && ok; i++) {
                    float v = x[n * 105 + i];
                    float want = part == 0 ? (v > 0 ? v : 0) : part == 1 ? 1 / (1 + expf(-v)) : expf(v);
                    ok = fabsf(yv[(n * 3 + part) * 105 + i] - want) <= 1e-5f * (1 + fabsf(want));
                }
        for (int i = 0; i < batch * 105 && ok; i++)
            ok = fabsf(zv[i] - 1 / (1 + expf(-x[i]))) <= 1e-6f;
        int64_t off[4];
        for (int k = 0; k < 4; k++) { /* steps: Relu, Sigmoid, Exp, Concat (, Abs) */
            crun_step_info st;
            CHECK_OK(crun_session_step_info(s, k, &st));
            off[k] = st.arena_offset;
        }
        crun_session_free(s);
        crun_model_free(m);
        CHECK_MSG(ok, "batch %lld: outputs differ from the direct computation", (long long)batch);
        int64_t slice = 105 * 4;
        if (batch == 1) {
            CHECK(off[0] == off[3] && off[2] == off[3] + 2 * slice);
            CHECK(off[1] != off[3] + slice);
        } else {
            CHECK(off[0] != off[3] && off[2] != off[3] + 2 * slice);
        }
    }
}
