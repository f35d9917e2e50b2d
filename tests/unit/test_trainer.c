/* test_trainer.c - the trainer: every layer's gradient against finite differences, the
 * optimizers against their formulas, thread-count independence, checkpoints, spec
 * errors, the data readers, and QAT's forward pass against crun running the exported
 * int8 model (bit for bit). */
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "quant/quant.h"
#include "trainer/checkpoint.h"
#include "trainer/data.h"
#include "trainer/optim.h"
#include "trainer/trainer.h"

/* A deterministic uniform in [-1, 1). */
static float urand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

typedef struct Case {
    Net net;
    int batch, k;
    float *x, *target, *grad;
} Case;

static bool case_make(Case *c, const char *spec, int batch, int threads, uint32_t seed)
{
    Diag d = {0};
    memset(c, 0, sizeof *c);
    if (net_parse(spec, &c->net, &d) != CRUN_OK || net_build(&c->net, batch, seed, threads, &d) != CRUN_OK) {
        fprintf(stderr, "%s\n", d.msg);
        return false;
    }
    c->batch = batch;
    c->k = (int)tshape_size(c->net.layers[c->net.n - 1].out);
    int64_t in = batch * tshape_size(c->net.layers[0].out);
    c->x = malloc((size_t)in * sizeof(float));
    c->target = malloc((size_t)(batch * c->k) * sizeof(float));
    c->grad = malloc((size_t)(batch * c->k) * sizeof(float));
    for (int64_t i = 0; i < in; i++)
        c->x[i] = urand(&seed);
    for (int64_t i = 0; i < batch * c->k; i++)
        c->target[i] = urand(&seed);
    return true;
}

static void case_free(Case *c)
{
    net_free(&c->net);
    free(c->x), free(c->target), free(c->grad);
}

static double case_loss(Case *c, bool backward)
{
    int64_t correct = 0;
    const float *y = net_forward(&c->net, c->x, c->batch);
    double loss = loss_eval(LOSS_MSE, y, c->batch, c->k, NULL, c->target, c->grad, &correct);
    if (backward)
        net_backward(&c->net, c->grad);
    return loss;
}

/* Compares every 7th element of every parameter's gradient with a central difference;
 * returns the share that agree (a ReLU kink or a max switching inside the step can
 * spoil a few). */
static double grad_agreement(Case *c, int *checked)
{
    c->net.training = true;
    case_loss(c, true);
    Param *p[TRAIN_MAX_PARAMS];
    int np = net_params(&c->net, p, TRAIN_MAX_PARAMS);
    float **g = calloc((size_t)np, sizeof *g);
    for (int i = 0; i < np; i++) {
        g[i] = malloc((size_t)p[i]->n * sizeof(float));
        memcpy(g[i], p[i]->g, (size_t)p[i]->n * sizeof(float));
    }
    int ok = 0, n = 0;
    const float h = 1e-3f; /* (1e-2 already shows the curvature of tanh and BatchNorm) */
    for (int i = 0; i < np; i++)
        for (int64_t j = i % 7; j < p[i]->n; j += 7) {
            float w = p[i]->w[j];
            p[i]->w[j] = w + h;
            double up = case_loss(c, false);
            p[i]->w[j] = w - h;
            double down = case_loss(c, false);
            p[i]->w[j] = w;
            double num = (up - down) / (2 * h), ana = g[i][j];
            /* (the float forward pass puts ~1e-4 of noise into the central difference) */
            bool good = fabs(num - ana) <= 0.03 * fmax(fabs(num), fabs(ana)) + 1e-3;
            if (!good && n - ok < 3)
                fprintf(stderr, "  param %d[%lld]: numeric %.6g, analytic %.6g\n", i, (long long)j, num, ana);
            ok += good;
            n++;
        }
    for (int i = 0; i < np; i++)
        free(g[i]);
    free(g);
    *checked = n;
    return n ? (double)ok / n : 0;
}

TEST(gradients_of_smooth_layers)
{
    /* strided, padded, grouped and 1x1 convolutions, BatchNorm (batch statistics), the
     * smooth activations, average pooling, linear layers */
    const char *spec = "input 2 7 7\n"
                       "conv 4 3 stride=2 pad=1\n"
                       "bn\n"
                       "tanh\n"
                       "conv 4 1 groups=2\n"
                       "sigmoid\n"
                       "avgpool 2 stride=1\n"
                       "conv 4 3 pad=same groups=4 bias=0\n"
                       "flatten\n"
                       "linear 5\n"
                       "gelu\n"
                       "bn\n"
                       "linear 3\n";
    Case c;
    CHECK(case_make(&c, spec, 3, 1, 11));
    int n;
    double share = grad_agreement(&c, &n);
    case_free(&c);
    CHECK_MSG(n > 40 && share == 1.0, "%.1f%% of %d gradients agree", 100 * share, n);
}

TEST(gradients_of_kinked_and_branching_layers)
{
    /* ReLU, ReLU6, LeakyReLU, max pooling, residual add, concat, global average, dropout */
    const char *spec = "input 3 8 8\n"
                       "conv 4 3 pad=1\n"
                       "leakyrelu 0.1 name=r1\n"
                       "conv 4 3 pad=1\n"
                       "relu\n"
                       "add r1\n"
                       "maxpool 2 name=p\n"
                       "conv 2 1\n"
                       "relu6\n"
                       "concat p\n"
                       "gap\n"
                       "linear 6\n"
                       "dropout 0.3\n"
                       "linear 2\n";
    Case c;
    CHECK(case_make(&c, spec, 4, 2, 5));
    int n;
    double share = grad_agreement(&c, &n);
    case_free(&c);
    CHECK_MSG(n > 40 && share >= 0.97, "%.1f%% of %d gradients agree", 100 * share, n);
}

TEST(cross_entropy_gradient_and_accuracy)
{
    float logits[6] = {2, 1, 0, -1, 0, 3}, grad[6];
    int32_t labels[2] = {0, 1};
    int64_t correct = 0;
    float loss = loss_eval(LOSS_CE, logits, 2, 3, labels, NULL, grad, &correct);
    double e0 = exp(2) + exp(1) + exp(0), e1 = exp(-1) + exp(0) + exp(3);
    CHECK_NEAR(loss, ((log(e0) - 2) + (log(e1) - 0)) / 2, 1e-5);
    CHECK(correct == 1);
    CHECK_NEAR(grad[0], (exp(2) / e0 - 1) / 2, 1e-6);
    CHECK_NEAR(grad[4], (exp(0) / e1 - 1) / 2, 1e-6);
    CHECK_NEAR(grad[5], exp(3) / e1 / 2, 1e-6);
}

TEST(optimizers_follow_their_formulas)
{
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f}, m[2] = {0}, v[2] = {0};
    Param p = {w, g, m, v, 2}, *pp = &p;
    Optim o;
    optim_init(&o);
    o.weight_decay = 0.1f;
    optim_step(&o, &pp, 1, 0.1f); /* v = g + wd w; w -= lr v */
    CHECK_NEAR(w[0], 1.0 - 0.1 * (0.5 + 0.1), 1e-6);
    optim_step(&o, &pp, 1, 0.1f);
    double v0 = 0.9 * 0.6 + (0.5 + 0.1 * 0.94);
    CHECK_NEAR(w[0], 0.94 - 0.1 * v0, 1e-6);
    float w2[1] = {1.0f}, g2[1] = {0.5f}, m2[1] = {0}, v2[1] = {0};
    Param q = {w2, g2, m2, v2, 1}, *qq = &q;
    optim_init(&o);
    o.kind = OPTIM_ADAMW;
    o.weight_decay = 0.01f;
    optim_step(&o, &qq, 1, 0.001f); /* first Adam step moves by lr (bias-corrected) */
    CHECK_NEAR(w2[0], 1.0 - 0.001 * 0.01 - 0.001 * (0.5 / (0.5 + 1e-8)), 1e-6);
    optim_init(&o);
    o.sched = SCHED_STEP, o.step_epochs = 2, o.gamma = 0.5f;
    CHECK_NEAR(optim_lr(&o, 3, 0), 0.005, 1e-7);
    o.sched = SCHED_COSINE;
    CHECK_NEAR(optim_lr(&o, 0, 0.5), 0.005, 1e-7);
}

/* A few SGD steps; the weights afterwards. */
static float *train_steps(const char *spec, int threads, int steps)
{
    Case c;
    if (!case_make(&c, spec, 16, threads, 3))
        return NULL;
    Param *p[TRAIN_MAX_PARAMS];
    int np = net_params(&c.net, p, TRAIN_MAX_PARAMS);
    Optim o;
    optim_init(&o);
    c.net.training = true;
    for (int s = 0; s < steps; s++) {
        case_loss(&c, true);
        optim_step(&o, p, np, 0.05f);
    }
    int64_t total = net_param_count(&c.net), at = 0;
    float *w = malloc((size_t)total * sizeof *w);
    for (int i = 0; i < np; i++, at += p[i - 1]->n)
        memcpy(w + at, p[i]->w, (size_t)p[i]->n * sizeof *w);
    case_free(&c);
    return w;
}

TEST(results_do_not_depend_on_the_thread_count)
{
    const char *spec = "input 1 12 12\nconv 8 3 pad=1\nbn\nrelu\nmaxpool 2\nconv 8 3\nrelu\nflatten\nlinear 4\n";
    float *a = train_steps(spec, 1, 4), *b = train_steps(spec, 2, 4);
    Case c;
    CHECK(case_make(&c, spec, 16, 1, 3));
    int64_t n = net_param_count(&c.net);
    case_free(&c);
    bool same = a && b && !memcmp(a, b, (size_t)n * sizeof *a);
    free(a), free(b);
    CHECK(same);
}

TEST(spec_errors_name_the_line)
{
    struct {
        const char *spec, *want;
    } bad[] = {
        {"conv 4 3\n", "starts with one input line"},
        {"input 1 8 8\nconvolution 4 3\n", "unknown layer 'convolution'"},
        {"input 1 8 8\nconv 4\n", "line 2: wrong arguments for conv"},
        {"input 1 8 8\nconv 4 3 stride=0\n", "bad value '0' for stride"},
        {"input 1 8 8\nconv 4 3 colour=red\n", "unknown option 'colour'"},
        {"input 1 8 8\nlinear 4\n", "linear needs a flat input"},
        {"input 1 8 8\nconv 4 3\nadd nowhere\n", "no earlier layer named 'nowhere'"},
        {"input 1 8 8\nconv 4 3 name=a\nconv 4 3 name=a\n", "'a' is taken"},
        {"input 2 8 8\nconv 3 3 groups=2\n", "groups 2 do not divide"},
        {"input 1 4 4\nconv 4 9\n", "the output would be"},
        {"input 1 8 8\n# only a comment\n", "no layers after its input"},
        {"input 1 8 8\nmaxpool 2 pad=2\n", "pad 2 must be smaller than the kernel 2"},
        {"input 3 8 8\nconv 4 3 name=a\nconv 4 1\nadd a\nconv 2 3\nadd a\n", "adds"},
    };
    char *deep = malloc(300 * 5 + 16);
    CHECK(deep);
    strcpy(deep, "input 4\n");
    for (int i = 0; i < 300; i++)
        strcat(deep, "relu\n");
    Net dn;
    Diag dd = {0};
    crun_status st = net_parse(deep, &dn, &dd);
    free(deep);
    CHECK_MSG(st == CRUN_ERR_INVALID_ARGUMENT && strstr(dd.msg, "more than 256 layers"), "%s", dd.msg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Net net;
        Diag d = {0};
        CHECK_MSG(net_parse(bad[i].spec, &net, &d) == CRUN_ERR_INVALID_ARGUMENT, "accepted: %s", bad[i].spec);
        CHECK_MSG(strstr(d.msg, bad[i].want), "'%s' does not say '%s'", d.msg, bad[i].want);
    }
}

TEST(checkpoint_round_trip)
{
    const char *spec = "input 1 6 6\nconv 3 3\nbn\nrelu\nflatten\nlinear 2\n";
    Case a, b;
    CHECK(case_make(&a, spec, 4, 1, 9));
    CHECK(case_make(&b, spec, 4, 1, 10)); /* other weights */
    Param *p[TRAIN_MAX_PARAMS];
    int np = net_params(&a.net, p, TRAIN_MAX_PARAMS);
    Optim o;
    optim_init(&o);
    a.net.training = true;
    case_loss(&a, true);
    optim_step(&o, p, np, 0.1f);
    char path[] = "/tmp/crun_ckpt_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    Diag d = {0};
    CheckpointState cs = {0};
    Optim ob;
    optim_init(&ob);
    bool ok = checkpoint_save(path, &a.net, &o, 2, 0, &d) == CRUN_OK && checkpoint_peek(path, &cs, &d) == CRUN_OK &&
              checkpoint_load(path, &b.net, &ob, &cs, &d) == CRUN_OK;
    bool same_spec = cs.spec && !strcmp(cs.spec, spec) && cs.epochs_done == 2;
    free(cs.spec);
    a.net.training = b.net.training = false;
    const float *ya = net_forward(&a.net, a.x, 4);
    float y0[8];
    memcpy(y0, ya, sizeof y0);
    const float *yb = net_forward(&b.net, a.x, 4);
    bool same = ok && !memcmp(y0, yb, sizeof y0) && ob.t == o.t;
    /* a checkpoint for another spec is refused */
    Case other;
    bool built = case_make(&other, "input 1 6 6\nconv 2 3\nflatten\nlinear 2\n", 4, 1, 1);
    bool refused = built && checkpoint_load(path, &other.net, &ob, &cs, &d) == CRUN_ERR_INVALID_ARGUMENT;
    case_free(&other);
    remove(path);
    case_free(&a), case_free(&b);
    CHECK_MSG(ok, "%s", d.msg);
    CHECK(same_spec);
    CHECK(same);
    CHECK(refused);
}

static bool write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(data, 1, n, f) == n;
    return f && fclose(f) == 0 && ok;
}

TEST(idx_reader)
{
    char dir[] = "/tmp/crun_idx_XXXXXX";
    CHECK(mkdtemp(dir));
    char img[512], lab[512];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", dir);
    uint8_t im[16 + 2 * 2 * 3] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int i = 0; i < 12; i++)
        im[16 + i] = (uint8_t)(i * 20);
    uint8_t lb[10] = {0, 0, 8, 1, 0, 0, 0, 2, 7, 3};
    CHECK(write_file(img, im, sizeof im) && write_file(lab, lb, sizeof lb));
    Dataset ds;
    Diag d = {0};
    CHECK_OK(data_load_idx_dir(dir, true, &ds, &d));
    bool good = ds.n == 2 && ds.shape.c == 1 && ds.shape.h == 2 && ds.shape.w == 3 && ds.labels[0] == 7 &&
                ds.labels[1] == 3 && ds.classes == 8 && fabsf(ds.x[11] - 220.0f / 255) < 1e-6f;
    data_free(&ds);
    /* one label short: refused with a message */
    uint8_t one[9] = {0, 0, 8, 1, 0, 0, 0, 1, 7};
    CHECK(write_file(lab, one, sizeof one));
    bool refused = data_load_idx_dir(dir, true, &ds, &d) == CRUN_ERR_INVALID_ARGUMENT;
    remove(img), remove(lab), rmdir(dir);
    CHECK(good);
    CHECK_MSG(refused && strstr(d.msg, "1 labels for 2 images"), "%s", d.msg);
}

TEST(shuffles_and_augments_deterministically)
{
    int64_t a[50], b[50], seen[50] = {0};
    data_shuffle(a, 50, 7, 1);
    data_shuffle(b, 50, 7, 1);
    CHECK(!memcmp(a, b, sizeof a));
    for (int i = 0; i < 50; i++)
        seen[a[i]]++;
    for (int i = 0; i < 50; i++)
        CHECK(seen[i] == 1);
    data_shuffle(b, 50, 7, 2);
    CHECK(memcmp(a, b, sizeof a) != 0);
    float x[4] = {1, 2, 3, 4}, out[4];
    int32_t lab = 5, got = -1;
    Dataset ds = {.n = 1, .shape = {1, 2, 2}, .x = x, .labels = &lab, .classes = 6};
    int64_t order[1] = {0};
    Augment flip = {.flip = true};
    bool flipped = false, kept = false;
    for (uint64_t seed = 0; seed < 16; seed++) {
        data_batch(&ds, order, 1, &flip, seed, out, &got, NULL);
        flipped |= out[0] == 2 && out[1] == 1 && out[2] == 4 && out[3] == 3;
        kept |= !memcmp(out, x, sizeof x);
    }
    CHECK(flipped && kept && got == 5);
}

/* ---- QAT against the runtime ---- */

/* Calibrates a random net's observers, exports its QDQ model and runs it with crun on
 * the same inputs: the largest logit difference in output steps. */
static long qat_vs_runtime(const char *spec, int batch, long *steps)
{
    Case c;
    if (!case_make(&c, spec, batch, 2, 21))
        return -1;
    Diag d = {0};
    c.net.training = true; /* BatchNorm statistics from a batch, as after training */
    for (int i = 0; i < 3; i++)
        net_forward(&c.net, c.x, batch);
    c.net.training = false;
    qat_fold(&c.net, true);
    if (qat_enable(&c.net, &d) != CRUN_OK) {
        fprintf(stderr, "%s\n", d.msg);
        return -1;
    }
    c.net.calibrating = true;
    net_forward(&c.net, c.x, batch);
    c.net.calibrating = false;
    qat_freeze(&c.net);
    const float *mine = net_forward(&c.net, c.x, batch);
    char path[] = "/tmp/crun_qat_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    long bad = -1;
    crun_model *m = NULL;
    crun_session *s = NULL;
    if (net_export_qdq(&c.net, path, &d) == CRUN_OK && crun_model_load_file(path, &m) == CRUN_OK &&
        crun_session_create(m, NULL, &s) == CRUN_OK) {
        TShape in = c.net.layers[0].out;
        int64_t dims[4] = {batch, in.c, in.h, in.w};
        crun_tensor out;
        if (crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, 4, dims, c.x) == CRUN_OK &&
            crun_session_run(s) == CRUN_OK && crun_session_get_output(s, 0, &out) == CRUN_OK) {
            float step = 0;
            for (int i = c.net.n - 1; i >= 0 && !step; i--)
                if (c.net.layers[i].own_y && c.net.layers[i].q.out_obs >= 0)
                    step = c.net.obs[c.net.layers[i].q.out_obs].scale;
            bad = 0;
            *steps = 0;
            for (int64_t i = 0; i < batch * c.k; i++) {
                long k = lroundf(fabsf(((const float *)out.data)[i] - mine[i]) / step);
                *steps = k > *steps ? k : *steps;
                bad += k > 0;
            }
        }
    }
    if (bad < 0)
        fprintf(stderr, "%s %s\n", d.msg, crun_last_error());
    crun_session_free(s);
    crun_model_free(m);
    remove(path);
    case_free(&c);
    return bad;
}

TEST(qat_forward_is_what_crun_runs)
{
    /* all integer: convolutions (grouped, strided, 1x1), fused ReLU and ReLU6, max
     * pooling and Flatten on 8-bit values, a linear layer longer than one exact slice,
     * a dropout (gone at inference) */
    const char *spec = "input 3 20 20\n"
                       "conv 8 3 stride=2 pad=1\nbn\nrelu6\n"
                       "conv 8 3 pad=1 groups=2\nrelu\nmaxpool 2\n"
                       "conv 12 1\nrelu\n"
                       "flatten\nlinear 16\nrelu\ndropout 0.2\nlinear 5\n";
    long steps = -1;
    long bad = qat_vs_runtime(spec, 6, &steps);
    CHECK_MSG(bad == 0, "%ld logits differ (by up to %ld steps)", bad, steps);
}

TEST(qat_with_float_layers_stays_within_a_step)
{
    /* the runtime runs LeakyReLU, AveragePool and Sigmoid in float between Q/DQ pairs:
     * their float rounding may differ in the last bit from the trainer's, so a logit may
     * move by one quantization step */
    const char *spec = "input 2 12 12\n"
                       "conv 6 3 pad=1 name=a\nleakyrelu 0.2\n"
                       "conv 6 3 pad=1\nrelu\nadd a\n"
                       "avgpool 2\nconv 4 3\nsigmoid\n"
                       "flatten\nlinear 3\n";
    long steps = -1;
    long bad = qat_vs_runtime(spec, 5, &steps);
    CHECK_MSG(bad >= 0 && steps <= 1, "%ld logits differ, by up to %ld steps", bad, steps);
}

TEST(qat_refuses_kernels_too_large_for_exact_sums)
{
    /* 23x23 = 529 taps: more than one exact int8 slice holds, so QAT says no (it once
     * looped for ever); 22x22 still trains */
    const char *specs[] = {"input 1 24 24\nconv 2 23 pad=same\nflatten\nlinear 2\n",
                           "input 1 24 24\nconv 2 22 pad=same\nflatten\nlinear 2\n"};
    for (int i = 0; i < 2; i++) {
        Case c;
        CHECK(case_make(&c, specs[i], 2, 1, 3));
        Diag d = {0};
        qat_fold(&c.net, true);
        crun_status st = qat_enable(&c.net, &d);
        CHECK_MSG(i == 0 ? st == CRUN_ERR_INVALID_ARGUMENT && strstr(d.msg, "23x23") : st == CRUN_OK, "%s", d.msg);
        if (st == CRUN_OK)
            net_forward(&c.net, c.x, c.batch);
        case_free(&c);
    }
}
