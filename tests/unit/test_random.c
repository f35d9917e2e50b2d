/* test_random.c - the random ops: seeded draws equal numpy's for the same seed, repeat per
 * session and advance per run; distributions have the right moments; Bernoulli,
 * Multinomial and training-mode Dropout edge cases and errors. */
#include <stdlib.h>

#include "testutil.h"

#define F32 CRUN_DTYPE_FLOAT
#define BOOL CRUN_DTYPE_BOOL

enum { BIG = 20000 };

static OnnxBuilder *random_model(const char *op, int64_t n, bool seeded, float a, float b)
{
    OnnxBuilder *ob = ob_new(17);
    Onnx__NodeProto *nd = ob_node(ob, op, "", "y");
    ob_attr_ints(ob, nd, "shape", &n, 1);
    if (seeded)
        ob_attr_float(ob, nd, "seed", 0.0f);
    bool normal = strstr(op, "Normal") != NULL;
    ob_attr_float(ob, nd, normal ? "mean" : "low", a);
    ob_attr_float(ob, nd, normal ? "scale" : "high", b);
    ob_output(ob, "y");
    return ob;
}

/* Runs the session `runs` times and keeps the last output's first n floats in y. */
static bool run_n(crun_session *s, int runs, float *y, long n)
{
    crun_tensor t;
    for (int r = 0; r < runs; r++)
        if (crun_session_run(s) != CRUN_OK || crun_session_get_output(s, 0, &t) != CRUN_OK)
            return false;
    memcpy(y, t.data, (size_t)n * sizeof *y);
    return true;
}

TEST(seeded_uniform_is_numpys_and_advances)
{
    OnnxBuilder *b = random_model("RandomUniform", 4, true, 0.0f, 1.0f);
    crun_model *m = ob_load(b);
    CHECK(m);
    crun_session *s1 = NULL, *s2 = NULL;
    CHECK_OK(crun_session_create(m, NULL, &s1));
    CHECK_OK(crun_session_create(m, NULL, &s2));
    float a[4], c[4], d[4];
    CHECK(run_n(s1, 1, a, 4));
    /* numpy: np.random.seed(0); np.random.uniform(0, 1, 4) */
    const float want[4] = {0.5488135f, 0.71518937f, 0.60276338f, 0.54488318f};
    CHECK_FLOATS(a, want, 4, 1e-6, 0);
    CHECK(run_n(s1, 1, c, 4));
    CHECK(memcmp(a, c, sizeof a) != 0); /* the next run draws new values */
    CHECK(run_n(s2, 1, d, 4));
    CHECK(memcmp(a, d, sizeof a) == 0); /* a new session starts the sequence again */
    crun_session_free(s1);
    crun_session_free(s2);
    crun_model_free(m);
    ob_free(b);
}

static void moments(const float *y, long n, double *mean, double *sd, float *lo, float *hi)
{
    double s = 0, s2 = 0;
    *lo = *hi = y[0];
    for (long i = 0; i < n; i++) {
        s += y[i];
        s2 += (double)y[i] * y[i];
        *lo = fminf(*lo, y[i]);
        *hi = fmaxf(*hi, y[i]);
    }
    *mean = s / n;
    *sd = sqrt(s2 / n - *mean * *mean);
}

TEST(uniform_and_normal_moments)
{
    float *y = malloc(BIG * sizeof *y), lo, hi;
    CHECK(y);
    double mean, sd;
    OnnxBuilder *b = random_model("RandomUniform", BIG, false, -2.0f, 6.0f);
    long n = run_f32(b, NULL, 0, y, BIG, NULL);
    ob_free(b);
    CHECK(n == BIG);
    moments(y, BIG, &mean, &sd, &lo, &hi);
    CHECK_MSG(fabs(mean - 2.0) < 0.1 && fabs(sd - 8.0 / sqrt(12.0)) < 0.1 && lo >= -2.0f && hi < 6.0f,
              "uniform: mean %g sd %g range %g..%g", mean, sd, lo, hi);
    b = random_model("RandomNormal", BIG, true, 3.0f, 0.5f);
    n = run_f32(b, NULL, 0, y, BIG, NULL);
    ob_free(b);
    CHECK(n == BIG);
    moments(y, BIG, &mean, &sd, &lo, &hi);
    CHECK_MSG(fabs(mean - 3.0) < 0.02 && fabs(sd - 0.5) < 0.02, "normal: mean %g sd %g", mean, sd);
    free(y);
}

TEST(bernoulli_edges_and_errors)
{
    int64_t d[1] = {6};
    float p[6] = {0, 1, 0, 1, 0.5f, 0.5f}, y[6];
    OnnxBuilder *b = ob_new(15);
    ob_input(b, "p", F32, 1, d, NULL);
    ob_node(b, "Bernoulli", "p", "y");
    ob_output(b, "y");
    TIn in = {F32, 1, {6}, p};
    CHECK(run_f32(b, &in, 1, y, 6, NULL) == 6);
    CHECK(y[0] == 0 && y[1] == 1 && y[2] == 0 && y[3] == 1);
    CHECK((y[4] == 0 || y[4] == 1) && (y[5] == 0 || y[5] == 1));
    p[2] = 1.5f;
    crun_model *m = ob_load(b);
    CHECK(m);
    crun_session *s = NULL;
    CHECK_OK(crun_session_create(m, NULL, &s));
    CHECK_OK(crun_session_set_input(s, 0, F32, 1, d, p));
    CHECK_STATUS(crun_session_run(s), CRUN_ERR_RUNTIME);
    CHECK(strstr(crun_last_error(), "not in [0, 1]"));
    crun_session_free(s);
    crun_model_free(m);
    ob_free(b);
}

TEST(multinomial_follows_the_logits)
{
    /* row 0: only class 2 possible; row 1: classes 0 and 1 at 1:3 */
    int64_t d[2] = {2, 3};
    float logits[6] = {-INFINITY, -INFINITY, 0.0f, 0.0f, logf(3.0f), -INFINITY};
    OnnxBuilder *b = ob_new(15);
    ob_input(b, "x", F32, 2, d, NULL);
    Onnx__NodeProto *nd = ob_node(b, "Multinomial", "x", "y");
    ob_attr_int(b, nd, "sample_size", 4000);
    ob_attr_int(b, nd, "dtype", CRUN_DTYPE_INT64);
    ob_attr_float(b, nd, "seed", 3.0f);
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    CHECK(m);
    TIn in = {F32, 2, {2, 3}, logits};
    crun_session *s = run_inputs(m, 1, 1, &in);
    CHECK(s);
    crun_tensor t;
    CHECK_OK(crun_session_get_output(s, 0, &t));
    CHECK(t.dtype == CRUN_DTYPE_INT64 && t.rank == 2 && t.dims[0] == 2 && t.dims[1] == 4000);
    const int64_t *y = t.data;
    long ones = 0;
    for (int i = 0; i < 4000; i++) {
        CHECK(y[i] == 2);
        CHECK(y[4000 + i] == 0 || y[4000 + i] == 1);
        ones += y[4000 + i] == 1;
    }
    CHECK_MSG(fabs(ones / 4000.0 - 0.75) < 0.03, "class 1 drawn %ld of 4000 times", ones);
    crun_session_free(s);
    crun_model_free(m);
    ob_free(b);
}

/* Dropout(x, ratio, training_mode) with both outputs. */
static crun_session *dropout_session(crun_model **m, OnnxBuilder **b, float ratio, bool training, const float *x,
                                     int64_t n)
{
    int64_t d[1] = {n};
    *b = ob_new(13);
    ob_input(*b, "x", F32, 1, d, NULL);
    ob_input(*b, "r", F32, 0, NULL, NULL);
    ob_input(*b, "t", BOOL, 0, NULL, NULL);
    ob_node(*b, "Dropout", "x,r,t", "y,mask");
    ob_output(*b, "y");
    ob_output(*b, "mask");
    *m = ob_load(*b);
    uint8_t tm = training;
    TIn in[3] = {{F32, 1, {n}, x}, {F32, 0, {0}, &ratio}, {BOOL, 0, {0}, &tm}};
    return *m ? run_inputs(*m, 2, 3, in) : NULL;
}

TEST(dropout_training_and_inference)
{
    float *x = malloc(BIG * sizeof *x);
    CHECK(x);
    for (int i = 0; i < BIG; i++)
        x[i] = 1.0f + (float)(i % 7);
    for (int training = 0; training <= 1; training++) {
        crun_model *m;
        OnnxBuilder *b;
        crun_session *s = dropout_session(&m, &b, 0.25f, training, x, BIG);
        CHECK(s);
        crun_tensor y, mask;
        CHECK_OK(crun_session_get_output(s, 0, &y));
        CHECK_OK(crun_session_get_output(s, 1, &mask));
        const float *yv = y.data;
        const uint8_t *mv = mask.data;
        long kept = 0;
        for (int i = 0; i < BIG; i++) {
            float want = mv[i] ? x[i] * (training ? 4.0f / 3.0f : 1.0f) : 0.0f;
            CHECK_MSG(fabsf(yv[i] - want) <= 1e-6f * want, "element %d: %g, want %g", i, yv[i], want);
            kept += mv[i];
        }
        if (training)
            CHECK_MSG(fabs(kept / (double)BIG - 0.75) < 0.02, "kept %ld of %d", kept, BIG);
        else
            CHECK(kept == BIG);
        crun_session_free(s);
        crun_model_free(m);
        ob_free(b);
    }
    /* a ratio of 1 would divide by zero */
    crun_model *m;
    OnnxBuilder *b;
    int64_t d[1] = {BIG};
    crun_session *s = dropout_session(&m, &b, 0.25f, true, x, BIG);
    CHECK(s);
    float one = 1.0f;
    uint8_t on = 1;
    int64_t none[1] = {0};
    /* (every input again: dropout_session's own are gone with its stack frame) */
    CHECK_OK(crun_session_set_input(s, 0, F32, 1, d, x));
    CHECK_OK(crun_session_set_input(s, 1, F32, 0, none, &one));
    CHECK_OK(crun_session_set_input(s, 2, BOOL, 0, none, &on));
    CHECK_STATUS(crun_session_run(s), CRUN_ERR_RUNTIME);
    CHECK(strstr(crun_last_error(), "ratio 1 is not in [0, 1)"));
    crun_session_free(s);
    crun_model_free(m);
    ob_free(b);
    free(x);
}
