/* train.c - see train.h. */
#include "trainer/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crun.h"
#include "runtime/progress.h"
#include "trainer/checkpoint.h"

void train_config_init(TrainConfig *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 3;
    c->batch = 64;
    c->threads = 0; /* one per core */
    c->seed = 1;
    optim_init(&c->optim);
    c->loss = LOSS_CE;
    c->bn_freeze_epoch = -1;
    c->qat_freeze = 0.5f;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- data ---- */

static crun_status load_data(const TrainConfig *c, Dataset *train, Dataset *test, Diag *d)
{
    crun_status st = c->idx_dir ? data_load_idx_dir(c->idx_dir, true, train, d)
                                : data_load_npy(c->train_x, c->train_y, train, d);
    if (st != CRUN_OK)
        return st;
    st = c->idx_dir ? data_load_idx_dir(c->idx_dir, false, test, d)
         : c->test_x ? data_load_npy(c->test_x, c->test_y, test, d)
                     : CRUN_OK;
    if (st != CRUN_OK) {
        data_free(train);
        return st;
    }
    if (c->train_limit > 0 && c->train_limit < train->n)
        train->n = c->train_limit;
    if (c->test_limit > 0 && c->test_limit < test->n)
        test->n = c->test_limit;
    return CRUN_OK;
}

static crun_status check_fit(const Net *net, const Dataset *ds, TrainLoss loss, Diag *d)
{
    TShape in = net->layers[0].out, s = ds->shape;
    int64_t k = tshape_size(net->layers[net->n - 1].out);
    if (in.c != s.c || in.h != s.h || in.w != s.w)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "the spec's input is %dx%dx%d, the data's samples %dx%dx%d",
                         in.c, in.h, in.w, s.c, s.h, s.w);
    if (loss == LOSS_CE && (!ds->labels || ds->classes > k))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "the data has %d classes, the model %lld outputs",
                         ds->classes, (long long)k);
    if (loss == LOSS_MSE && (!ds->targets || ds->k_targets != k))
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "mse needs %lld float targets per sample", (long long)k);
    return CRUN_OK;
}

/* ---- epochs ---- */

typedef struct Batch {
    float *x, *targets, *grad;
    int32_t *labels;
    int64_t *order;
} Batch;

static bool batch_alloc(Batch *b, const Net *net, const Dataset *ds, int64_t n)
{
    int64_t k = tshape_size(net->layers[net->n - 1].out);
    b->x = malloc((size_t)(net->batch * tshape_size(ds->shape)) * sizeof(float));
    b->targets = malloc((size_t)(net->batch * k) * sizeof(float));
    b->grad = malloc((size_t)(net->batch * k) * sizeof(float));
    b->labels = malloc((size_t)net->batch * sizeof(int32_t));
    b->order = malloc((size_t)(n > net->batch ? n : net->batch) * sizeof(int64_t) + 8); /* (evaluation uses a batch of it) */
    return b->x && b->targets && b->grad && b->labels && b->order;
}

static void batch_free(Batch *b) { free(b->x), free(b->targets), free(b->grad), free(b->labels), free(b->order); }

typedef struct EpochStats {
    double loss, acc, seconds;
    int64_t samples;
} EpochStats;

typedef struct Phase {
    const char *label;
    int epoch, epochs;      /* this phase's epoch (from 0) and count */
    int epoch0;             /* the schedule's epoch at this phase's start */
    int64_t step0;          /* and its step */
    int64_t steps_total;    /* the schedule's steps (its progress is step / steps_total) */
    int64_t freeze_at;      /* QAT: the phase step after which observers freeze (-1: never) */
} Phase;

/* Whether the QAT epochs continue the float schedule (cosine or step, no --qat-lr). */
static bool qat_continues(const TrainConfig *c) { return c->qat_lr <= 0 && c->optim.sched != SCHED_CONST; }

static void train_epoch(Net *net, Optim *o, const TrainConfig *c, const Dataset *ds, Batch *b, const Phase *ph,
                        EpochStats *es)
{
    int64_t n = ds->n, per_epoch = (n + net->batch - 1) / net->batch, correct = 0;
    Param *params[TRAIN_MAX_PARAMS];
    int np = net_params(net, params, TRAIN_MAX_PARAMS);
    int k = (int)tshape_size(net->layers[net->n - 1].out);
    data_shuffle(b->order, n, c->seed, ph->epoch + (net->qat ? 1000 : 0));
    net->training = true;
    Progress pg;
    char label[64], note[96];
    snprintf(label, sizeof label, "%s %d/%d", ph->label, ph->epoch + 1, ph->epochs);
    progress_start(&pg, c->progress, label, per_epoch);
    double loss_sum = 0, t0 = now_s();
    for (int64_t s = 0; s < per_epoch; s++) {
        int64_t step = (int64_t)ph->epoch * per_epoch + s;
        if (ph->freeze_at >= 0 && step == ph->freeze_at)
            qat_freeze(net);
        int cur = (int)(n - s * net->batch < net->batch ? n - s * net->batch : net->batch);
        data_batch(ds, b->order + s * net->batch, cur, &c->augment, c->seed ^ (uint64_t)step, b->x, b->labels,
                   b->targets);
        net->step++;
        const float *out = net_forward(net, b->x, cur);
        loss_sum += loss_eval(c->loss, out, cur, k, b->labels, b->targets, b->grad, &correct) * cur;
        net_backward(net, b->grad);
        double progress = (double)(ph->step0 + step) / (double)(ph->steps_total > 0 ? ph->steps_total : 1);
        float lr = optim_lr(o, ph->epoch0 + ph->epoch, progress);
        optim_step(o, params, np, lr);
        int64_t done = s * net->batch + cur;
        if (c->progress) {
            snprintf(note, sizeof note, "loss %.4f acc %.2f%% %.0f samples/s", loss_sum / done, 100.0 * correct / done,
                     done / (now_s() - t0));
            progress_update(&pg, s + 1, note);
        }
    }
    progress_end(&pg);
    net->training = false;
    es->seconds = now_s() - t0;
    es->samples = n;
    es->loss = loss_sum / n;
    es->acc = (double)correct / n;
}

/* Accuracy over ds (-1 without labels or data), its mean loss into *loss when not NULL,
 * and its outputs into out (n x k) when not NULL. */
static double evaluate(Net *net, const TrainConfig *c, const Dataset *ds, Batch *b, float *out, double *loss)
{
    int k = (int)tshape_size(net->layers[net->n - 1].out);
    int64_t correct = 0;
    double total = 0;
    net->training = false;
    for (int64_t s = 0; s < ds->n; s += net->batch) {
        int cur = (int)(ds->n - s < net->batch ? ds->n - s : net->batch);
        for (int i = 0; i < cur; i++)
            b->order[i] = s + i;
        data_batch(ds, b->order, cur, NULL, 0, b->x, b->labels, b->targets);
        const float *y = net_forward(net, b->x, cur);
        total += (double)loss_eval(c->loss, y, cur, k, b->labels, b->targets, NULL, &correct) * cur;
        if (out)
            memcpy(out + s * k, y, (size_t)cur * k * sizeof *y);
    }
    if (loss)
        *loss = ds->n ? total / (double)ds->n : -1;
    return ds->n && c->loss == LOSS_CE ? (double)correct / ds->n : -1;
}

/* Observers take min/max over a few training batches (no weight change). */
static void calibrate(Net *net, const Dataset *ds, Batch *b, int batches)
{
    qat_reset_observers(net);
    net->calibrating = true;
    for (int64_t s = 0; s < batches && s * net->batch < ds->n; s++) {
        int cur = (int)(ds->n - s * net->batch < net->batch ? ds->n - s * net->batch : net->batch);
        for (int i = 0; i < cur; i++)
            b->order[i] = s * net->batch + i;
        data_batch(ds, b->order, cur, NULL, 0, b->x, b->labels, b->targets);
        net_forward(net, b->x, cur);
    }
    net->calibrating = false;
    qat_freeze(net);
}

/* ---- the check against the runtime ---- */

static int argmax(const float *v, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* The output's quantization step (the last layer's observer). */
static float output_step(const Net *net)
{
    for (int i = net->n - 1; i >= 0; i--) {
        const Layer *l = &net->layers[i];
        if (l->own_y && l->q.out_obs >= 0)
            return net->obs[l->q.out_obs].scale;
    }
    return 1.0f;
}

static crun_status check_runtime(const Net *net, const TrainConfig *c, const Dataset *ds, const float *mine,
                                 TrainResult *r, Diag *d)
{
    crun_model *m = NULL;
    crun_session *s = NULL;
    crun_session_options so;
    crun_session_options_init(&so);
    so.threads = c->threads;
    if (crun_model_load_file(c->export_int8, &m) != CRUN_OK || crun_session_create(m, &so, &s) != CRUN_OK) {
        crun_model_free(m);
        return diag_fail(d, CRUN_ERR_RUNTIME, "the int8 export does not run: %s", crun_last_error());
    }
    int k = (int)tshape_size(net->layers[net->n - 1].out);
    int64_t size = tshape_size(ds->shape);
    TShape sh = ds->shape;
    float step = output_step(net);
    crun_status st = CRUN_OK;
    r->agree = r->compared = r->max_step = 0;
    for (int64_t at = 0; at < ds->n && st == CRUN_OK; at += net->batch) {
        int64_t cur = ds->n - at < net->batch ? ds->n - at : net->batch;
        bool flat = sh.h == 1 && sh.w == 1;
        int64_t dims[4] = {cur, sh.c, sh.h, sh.w};
        crun_tensor out;
        st = crun_session_set_input(s, 0, CRUN_DTYPE_FLOAT, flat ? 2 : 4, dims, ds->x + at * size);
        if (st == CRUN_OK)
            st = crun_session_run(s);
        if (st == CRUN_OK)
            st = crun_session_get_output(s, 0, &out);
        if (st != CRUN_OK)
            break;
        const float *y = out.data;
        for (int64_t i = 0; i < cur; i++) {
            const float *a = y + i * k, *b = mine + (at + i) * k;
            r->agree += argmax(a, k) == argmax(b, k);
            for (int j = 0; j < k; j++) {
                int64_t steps = (int64_t)llroundf(fabsf(a[j] - b[j]) / step);
                r->max_step = steps > r->max_step ? steps : r->max_step;
            }
        }
        r->compared += cur;
    }
    if (st != CRUN_OK)
        st = diag_fail(d, CRUN_ERR_RUNTIME, "running the int8 export: %s", crun_last_error());
    crun_session_free(s);
    crun_model_free(m);
    return st;
}

/* ---- the run ---- */

typedef struct Run {
    const TrainConfig *c;
    Net net;
    Dataset train, test;
    Batch b;
    Optim optim;
    int start_epoch, qat_start;
    TrainResult *result;
} Run;

/* One line per epoch: accuracies for classification, losses for regression; test figures
 * when there is a test set. */
static void print_epoch(Run *run, const char *phase, int e, int n, const EpochStats *es, double *test_acc)
{
    const TrainConfig *c = run->c;
    double test_loss;
    *test_acc = evaluate(&run->net, c, &run->test, &run->b, NULL, &test_loss);
    run->result->test_loss = test_loss;
    printf("%s epoch %d/%d: loss %.4f", phase, e + 1, n, es->loss);
    if (c->loss == LOSS_CE)
        printf(", train accuracy %.2f%%", 100 * es->acc);
    if (run->test.n && c->loss == LOSS_CE)
        printf(", test accuracy %.2f%%", 100 * *test_acc);
    else if (run->test.n)
        printf(", test loss %.4f", test_loss);
    printf(", %.0f samples/s\n", es->samples / es->seconds);
    fflush(stdout);
}


static crun_status float_phase(Run *run, TrainResult *r, Diag *d)
{
    const TrainConfig *c = run->c;
    int64_t per_epoch = (run->train.n + c->batch - 1) / c->batch;
    int64_t total = per_epoch * (c->epochs + (qat_continues(c) ? c->qat_epochs : 0));
    double samples = 0, seconds = 0;
    for (int e = run->start_epoch; e < c->epochs; e++) {
        run->net.bn_frozen = c->bn_freeze_epoch >= 0 && e >= c->bn_freeze_epoch;
        EpochStats es;
        Phase ph = {"train", e, c->epochs, 0, 0, total, -1};
        train_epoch(&run->net, &run->optim, c, &run->train, &run->b, &ph, &es);
        samples += (double)es.samples, seconds += es.seconds;
        print_epoch(run, "float", e, c->epochs, &es, &r->fp32_acc);
        if (c->checkpoint) {
            crun_status st = checkpoint_save(c->checkpoint, &run->net, &run->optim, e + 1, 0, d);
            if (st != CRUN_OK)
                return st;
        }
    }
    r->samples_per_s = seconds > 0 ? samples / seconds : 0;
    if (run->start_epoch < c->epochs || run->qat_start == 0)
        r->fp32_acc = evaluate(&run->net, c, &run->test, &run->b, NULL, NULL);
    return c->export_float ? net_export_onnx(&run->net, c->export_float, d) : CRUN_OK;
}

static crun_status quant_phase(Run *run, TrainResult *r, Diag *d)
{
    const TrainConfig *c = run->c;
    crun_status st = CRUN_OK;
    if (!run->net.qat) {
        qat_fold(&run->net, true);
        if ((st = qat_enable(&run->net, d)) != CRUN_OK)
            return st;
    }
    if (c->ptq_batches > 0 && run->qat_start == 0) {
        calibrate(&run->net, &run->train, &run->b, c->ptq_batches);
        double loss;
        r->ptq_acc = evaluate(&run->net, c, &run->test, &run->b, NULL, &loss);
        printf("post-training int8 (%d calibration batches)", c->ptq_batches);
        if (run->test.n && c->loss == LOSS_CE)
            printf(": test accuracy %.2f%%", 100 * r->ptq_acc);
        else if (run->test.n)
            printf(": test loss %.4f", loss);
        printf("\n");
        if (c->export_ptq && (st = net_export_qdq(&run->net, c->export_ptq, d)) != CRUN_OK)
            return st;
    }
    if (c->qat_epochs <= 0)
        return st;
    if (run->qat_start == 0)
        qat_reset_observers(&run->net);
    int64_t per_epoch = (run->train.n + c->batch - 1) / c->batch, steps = per_epoch * c->qat_epochs;
    bool cont = qat_continues(c);
    for (int e = run->qat_start; e < c->qat_epochs; e++) {
        EpochStats es;
        Phase ph = {"qat", e, c->qat_epochs, 0, 0, steps, (int64_t)(c->qat_freeze * (float)steps)};
        Optim o = run->optim;
        if (cont) { /* more epochs of the float schedule */
            ph.epoch0 = c->epochs;
            ph.step0 = per_epoch * c->epochs;
            ph.steps_total = per_epoch * (c->epochs + c->qat_epochs);
        } else if (c->qat_lr > 0) { /* a restart at --qat-lr, annealed to 0 */
            o.sched = SCHED_COSINE;
            o.lr = c->qat_lr;
        } else { /* a constant rate drops to a tenth for fine-tuning */
            o.lr *= 0.1f;
        }
        train_epoch(&run->net, &o, c, &run->train, &run->b, &ph, &es);
        run->optim.t = o.t;
        print_epoch(run, "qat int8", e, c->qat_epochs, &es, &r->qat_acc);
        if (c->checkpoint && (st = checkpoint_save(c->checkpoint, &run->net, &run->optim, c->epochs, e + 1, d)))
            return st;
    }
    return st;
}

static crun_status finish(Run *run, TrainResult *r, Diag *d)
{
    const TrainConfig *c = run->c;
    if (!c->export_int8)
        return CRUN_OK;
    crun_status st = net_export_qdq(&run->net, c->export_int8, d);
    if (st != CRUN_OK || !c->check || !run->test.n)
        return st;
    int64_t k = tshape_size(run->net.layers[run->net.n - 1].out);
    float *mine = malloc((size_t)(run->test.n * k) * sizeof *mine);
    if (!mine)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    evaluate(&run->net, c, &run->test, &run->b, mine, NULL);
    st = check_runtime(&run->net, c, &run->test, mine, r, d);
    free(mine);
    if (st == CRUN_OK)
        printf("crun on %s: the same class as the trainer on %lld/%lld test samples, logits within %lld step%s\n",
               c->export_int8, (long long)r->agree, (long long)r->compared, (long long)r->max_step,
               r->max_step == 1 ? "" : "s");
    return st;
}

/* Whether the run trains, calibrates or exports in int8 after the float epochs. */
static bool wants_int8(const TrainConfig *c) { return c->qat_epochs > 0 || c->ptq_batches > 0 || c->export_int8; }

static crun_status setup(Run *run, Diag *d)
{
    const TrainConfig *c = run->c;
    crun_status st = load_data(c, &run->train, &run->test, d);
    if (st != CRUN_OK)
        return st;
    run->optim = c->optim;
    CheckpointState cs = {0};
    if (c->resume && (st = checkpoint_peek(c->resume, &cs, d)) != CRUN_OK)
        return st;
    st = net_parse(cs.spec ? cs.spec : c->spec_text, &run->net, d);
    if (st == CRUN_OK)
        st = check_fit(&run->net, &run->train, c->loss, d);
    if (st == CRUN_OK && wants_int8(c))
        st = qat_check(&run->net, d);
    if (st == CRUN_OK)
        st = net_build(&run->net, c->batch, c->seed, c->threads, d);
    if (st == CRUN_OK && c->resume) {
        st = checkpoint_load(c->resume, &run->net, &run->optim, &cs, d);
        run->start_epoch = cs.epochs_done;
        run->qat_start = cs.qat_done;
    }
    free(cs.spec);
    if (st == CRUN_OK && !run->b.x && !batch_alloc(&run->b, &run->net, &run->train, run->train.n))
        st = diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory for batches");
    return st;
}

crun_status train_run(const TrainConfig *c, TrainResult *r, Diag *d)
{
    *r = (TrainResult){.fp32_acc = -1, .ptq_acc = -1, .qat_acc = -1, .test_loss = -1};
    Run run = {.c = c, .result = r};
    crun_status st = setup(&run, d);
    if (st == CRUN_OK && !run.net.qat)
        st = float_phase(&run, r, d);
    if (st == CRUN_OK && wants_int8(c))
        st = quant_phase(&run, r, d);
    if (st == CRUN_OK && c->resume && run.start_epoch >= c->epochs && run.qat_start >= c->qat_epochs) {
        /* a resumed run with nothing left to train */
        double acc = evaluate(&run.net, c, &run.test, &run.b, NULL, NULL);
        *(run.net.qat ? &r->qat_acc : &r->fp32_acc) = acc;
        fprintf(stderr, "crun: the checkpoint has %d float and %d QAT epochs already: nothing to train\n",
                run.start_epoch, run.qat_start);
    }
    if (st == CRUN_OK)
        st = finish(&run, r, d);
    batch_free(&run.b);
    net_free(&run.net);
    data_free(&run.train);
    data_free(&run.test);
    return st;
}
