/* cli_train.c - `crun train SPEC`: trains the network a spec file describes (see
 * trainer/trainer.h), with quantization-aware epochs, exports and a check of the int8
 * export against the trainer. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loaders/tensor_file.h"
#include "tools/cli.h"
#include "trainer/train.h"

static const char usage[] =
    "usage: crun train SPEC [options]\n"
    "  SPEC: one layer per line, e.g. input 1 28 28 / conv 16 3 pad=1 / bn / relu / maxpool 2 /\n"
    "        flatten / linear 10 (see docs/train.md)\n"
    "data (default: Fashion-MNIST in " TRAIN_DEFAULT_DATA "):\n"
    "  --data DIR                 IDX files (train-/t10k-images-idx3-ubyte[.gz] and labels)\n"
    "  --train-npy X Y            samples [n,...] (float32 or uint8) and labels [n] (or float targets)\n"
    "  --test-npy X Y\n"
    "  --limit N, --test-limit N  use the first N samples only\n"
    "  --augment flip|shift=N|flip,shift=N\n"
    "training:\n"
    "  --epochs N (3)  --batch N (64)  --threads N (one per core)  --seed N (1)\n"
    "  --optim sgd|adam|adamw (sgd)  --lr F (0.01)  --momentum F (0.9)  --weight-decay F (0)\n"
    "  --schedule const|step:EPOCHS[:GAMMA]|cosine  --loss ce|mse  --bn-freeze EPOCH\n"
    "quantization:\n"
    "  --qat [N]                  N (default 1) quantization-aware epochs after the float ones\n"
    "  --qat-lr F                 restart the rate at F for QAT, annealed to 0 (default: QAT\n"
    "                             continues a cosine or step schedule, or takes a tenth of a\n"
    "                             constant --lr)\n"
    "  --qat-freeze F             observers freeze after this share of the QAT steps (0.5)\n"
    "  --ptq N                    also quantize after training on N calibration batches\n"
    "output:\n"
    "  --export OUT.onnx          the trained model: int8 QDQ after --qat, else float\n"
    "  --export-float OUT.onnx    the float model (after the float epochs)\n"
    "  --export-int8 OUT.onnx     the int8 QDQ model (QAT, or post-training without --qat)\n"
    "  --export-ptq OUT.onnx      the post-training int8 model (with --ptq)\n"
    "  --check                    run the int8 export with crun and compare with the trainer\n"
    "  --checkpoint FILE          saved after every epoch;  --resume FILE  continues one\n"
    "  --no-progress              no progress bar (there is none off a terminal anyway)\n";

static bool arg_int(const char *s, int lo, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > 1 << 30)
        return false;
    *out = (int)v;
    return true;
}

static bool arg_float(const char *s, float *out)
{
    char *end;
    *out = strtof(s, &end);
    return *s && !*end && *out >= 0 && *out < 1e6f;
}

static bool parse_schedule(const char *s, Optim *o)
{
    if (!strcmp(s, "const"))
        return o->sched = SCHED_CONST, true;
    if (!strcmp(s, "cosine"))
        return o->sched = SCHED_COSINE, true;
    if (strncmp(s, "step:", 5))
        return false;
    o->sched = SCHED_STEP;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s + 5);
    char *g = strchr(buf, ':');
    if (g)
        *g++ = 0;
    return arg_int(buf, 1, &o->step_epochs) && (!g || arg_float(g, &o->gamma));
}

static bool parse_augment(char *s, Augment *a)
{
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "flip"))
            a->flip = true;
        else if (!strncmp(tok, "shift=", 6) && arg_int(tok + 6, 0, &a->shift) && a->shift <= 16)
            ;
        else
            return false;
    }
    return true;
}

/* Options with one value; returns false for an unknown option or a bad value. */
static bool parse_one(TrainConfig *c, const char *opt, char *v)
{
    Optim *o = &c->optim;
    if (!strcmp(opt, "--data"))
        return c->idx_dir = v, true;
    if (!strcmp(opt, "--epochs"))
        return arg_int(v, 0, &c->epochs);
    if (!strcmp(opt, "--batch"))
        return arg_int(v, 1, &c->batch) && c->batch <= 65536;
    if (!strcmp(opt, "--threads"))
        return arg_int(v, 0, &c->threads) && c->threads <= 256;
    if (!strcmp(opt, "--seed")) {
        int s;
        return arg_int(v, 0, &s) && (c->seed = (uint64_t)s, true);
    }
    if (!strcmp(opt, "--optim")) {
        o->kind = !strcmp(v, "adam") ? OPTIM_ADAM : !strcmp(v, "adamw") ? OPTIM_ADAMW : OPTIM_SGD;
        return !strcmp(v, "sgd") || o->kind != OPTIM_SGD;
    }
    if (!strcmp(opt, "--lr"))
        return arg_float(v, &o->lr) && o->lr > 0;
    if (!strcmp(opt, "--momentum"))
        return arg_float(v, &o->momentum) && o->momentum < 1;
    if (!strcmp(opt, "--weight-decay"))
        return arg_float(v, &o->weight_decay);
    if (!strcmp(opt, "--schedule"))
        return parse_schedule(v, o);
    if (!strcmp(opt, "--loss")) {
        c->loss = !strcmp(v, "mse") ? LOSS_MSE : LOSS_CE;
        return !strcmp(v, "mse") || !strcmp(v, "ce");
    }
    if (!strcmp(opt, "--augment"))
        return parse_augment(v, &c->augment);
    if (!strcmp(opt, "--bn-freeze"))
        return arg_int(v, 0, &c->bn_freeze_epoch);
    if (!strcmp(opt, "--qat"))
        return arg_int(v, 0, &c->qat_epochs);
    if (!strcmp(opt, "--qat-lr"))
        return arg_float(v, &c->qat_lr);
    if (!strcmp(opt, "--qat-freeze"))
        return arg_float(v, &c->qat_freeze) && c->qat_freeze <= 1;
    if (!strcmp(opt, "--ptq"))
        return arg_int(v, 1, &c->ptq_batches);
    if (!strcmp(opt, "--limit") || !strcmp(opt, "--test-limit")) {
        int n = 0;
        bool ok = arg_int(v, 1, &n);
        *(opt[2] == 'l' ? &c->train_limit : &c->test_limit) = n;
        return ok;
    }
    if (!strcmp(opt, "--export-float"))
        return c->export_float = v, true;
    if (!strcmp(opt, "--export-int8"))
        return c->export_int8 = v, true;
    if (!strcmp(opt, "--export-ptq"))
        return c->export_ptq = v, true;
    if (!strcmp(opt, "--checkpoint"))
        return c->checkpoint = v, true;
    if (!strcmp(opt, "--resume"))
        return c->resume = v, true;
    return false;
}

static bool is_count(const char *s) { return *s && strspn(s, "0123456789") == strlen(s); }

/* --export names the model the run ends with: the QAT one when there is QAT. */
static int place_export(TrainConfig *c, const char *export)
{
    if (!export)
        return -1;
    const char **slot = c->qat_epochs > 0 ? &c->export_int8 : &c->export_float;
    if (*slot)
        return cli_fail(EXIT_BAD_INPUT, "--export and --export-%s name the same model: give one",
                        c->qat_epochs > 0 ? "int8" : "float");
    *slot = export;
    return -1;
}

static int parse_args(int argc, char **argv, TrainConfig *c, const char **spec)
{
    *spec = NULL;
    const char *export = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s", usage);
            return EXIT_OK;
        }
        if (!strcmp(a, "--check")) {
            c->check = true;
        } else if (!strcmp(a, "--qat") && (i + 1 == argc || !is_count(argv[i + 1]))) {
            c->qat_epochs = 1; /* a bare --qat: one epoch */
        } else if (!strcmp(a, "--export")) {
            if (i + 1 >= argc)
                return cli_fail(EXIT_BAD_INPUT, "--export needs a file");
            export = argv[++i];
        } else if (!strcmp(a, "--no-progress")) {
            c->progress = false;
        } else if (!strcmp(a, "--train-npy") || !strcmp(a, "--test-npy")) {
            if (i + 2 >= argc)
                return cli_fail(EXIT_BAD_INPUT, "%s needs two files (samples and labels)", a);
            bool train = a[2] == 't' && a[3] == 'r';
            *(train ? &c->train_x : &c->test_x) = argv[i + 1];
            *(train ? &c->train_y : &c->test_y) = argv[i + 2];
            i += 2;
        } else if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc)
                return cli_fail(EXIT_BAD_INPUT, "%s needs a value", a);
            if (!parse_one(c, a, argv[++i]))
                return cli_fail(EXIT_BAD_INPUT, "bad option or value: %s %s (crun train --help)", a, argv[i]);
        } else if (!*spec) {
            *spec = a;
        } else {
            return cli_fail(EXIT_BAD_INPUT, "unexpected argument '%s' (crun train --help)", a);
        }
    }
    if (!*spec && !c->resume)
        return cli_fail(EXIT_BAD_INPUT, "no spec file given\n%s", usage);
    int rc = place_export(c, export);
    if (rc >= 0)
        return rc;
    if (c->train_x ? c->idx_dir != NULL : false)
        return cli_fail(EXIT_BAD_INPUT, "--data and --train-npy are alternatives");
    if (!c->train_x && !c->idx_dir)
        c->idx_dir = TRAIN_DEFAULT_DATA;
    if (c->check && !c->export_int8)
        return cli_fail(EXIT_BAD_INPUT, "--check compares the int8 export: give --export-int8 (or --qat and --export)");
    if (c->export_int8 && c->qat_epochs == 0 && c->ptq_batches == 0)
        c->ptq_batches = 32; /* an int8 export without QAT is a post-training quantization */
    return -1;
}

int cmd_train(int argc, char **argv)
{
    TrainConfig c;
    train_config_init(&c);
    c.progress = isatty(2);
    const char *spec_path;
    int rc = parse_args(argc, argv, &c, &spec_path);
    if (rc >= 0)
        return rc;
    void *text = NULL;
    size_t size = 0;
    Diag d = {0};
    if (spec_path && file_read_all(spec_path, &text, &size, &d) != CRUN_OK)
        return cli_fail(EXIT_BAD_INPUT, "%s", d.msg);
    char *spec = text ? malloc(size + 1) : NULL;
    if (spec) {
        memcpy(spec, text, size);
        spec[size] = 0;
    }
    free(text);
    text = spec;
    c.spec_text = spec;
    TrainResult r;
    crun_status st = train_run(&c, &r, &d);
    free(text);
    if (st != CRUN_OK)
        return cli_fail(st == CRUN_ERR_RUNTIME ? EXIT_RUN_FAILED : EXIT_BAD_INPUT, "%s", d.msg);
    printf("result: fp32_acc=%.4f qat_int8_acc=%.4f ptq_int8_acc=%.4f agree=%lld/%lld max_step=%lld sps=%.0f "
           "test_loss=%.4f\n",
           r.fp32_acc, r.qat_acc, r.ptq_acc, (long long)r.agree, (long long)r.compared, (long long)r.max_step,
           r.samples_per_s, r.test_loss);
    return EXIT_OK;
}
