/* cli_run.c - `crun model.onnx ...`: run once and print (or save) every output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops/registry.h"
#include "tools/cli.h"

static const char usage[] =
    "usage: crun MODEL [--input NAME=FILE]... [--output-dir DIR] [--threads N] [--max-memory SIZE] [--dim SYM=VALUE]...\n"
    "                  [--top K] [--labels FILE] [--isa scalar|avx2|avx512|avx512vnni|neon|neondot|neonfp16]\n"
    "                  [--backend native|xnnpack|auto]\n"
    "Runs MODEL (.onnx) once. FILE is .npy or an ONNX TensorProto .pb; inputs not given are\n"
    "generated (floats uniform in [0,1), integers 0), symbolic dims from --dim (default 1).\n"
    "--top K prints the K best classes of each output, named by --labels (one per line) or by\n"
    "the model's 'labels' metadata. --backend xnnpack runs the parts of the graph XNNPACK supports\n"
    "with XNNPACK; auto times both ways when planning and keeps the faster (default: native,\n"
    "or the CRUN_BACKEND environment variable).\n";

/* Labels: the file's lines, or the model's "labels" metadata (one per line). */
static char *read_labels(const char *path, const crun_model *m)
{
    if (!path) {
        const char *meta = crun_model_metadata(m, "labels");
        return meta ? str_dup(meta) : NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf && !feof(f)) {
        if (n == cap) {
            char *p = realloc(buf, (cap *= 2) + 1);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f))
            break;
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

/* The k-th line of labels (in place, copied out), or NULL. */
static const char *label_at(const char *labels, int64_t k, char *out, size_t size)
{
    const char *p = labels;
    for (int64_t i = 0; p && i < k; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p || !*p)
        return NULL;
    size_t len = strcspn(p, "\r\n");
    snprintf(out, size, "%.*s", (int)CRUN_MIN(len, size - 1), p);
    return out;
}

static void print_top(const crun_tensor *t, int k, const char *labels)
{
    if (!dtype_is_float(t->dtype) || t->rank < 1)
        return;
    Tensor v = {.dtype = t->dtype, .rank = t->rank, .data = (void *)t->data};
    memcpy(v.dims, t->dims, sizeof v.dims);
    int64_t classes = t->dims[t->rank - 1], rows = tensor_numel(&v) / (classes ? classes : 1);
    for (int64_t r = 0; r < rows && classes > 0; r++) {
        printf("  top-%d:", k);
        bool *taken = calloc((size_t)classes, 1);
        for (int i = 0; i < k && i < classes && taken; i++) {
            int64_t best = -1;
            for (int64_t c = 0; c < classes; c++)
                if (!taken[c] && (best < 0 || tensor_get_double(&v, r * classes + c) >
                                                  tensor_get_double(&v, r * classes + best)))
                    best = c;
            taken[best] = true;
            char buf[128];
            const char *name = labels ? label_at(labels, best, buf, sizeof buf) : NULL;
            printf("%s %s%s%lld%s %.4f", i ? "," : "", name ? name : "", name ? " (" : "class ", (long long)best,
                   name ? ")" : "", tensor_get_double(&v, r * classes + best));
        }
        free(taken);
        printf("\n");
    }
}

int cmd_run(int argc, char **argv)
{
    CliOptions o;
    int rc = cli_parse(argc, argv, 1, &o, usage);
    if (rc >= 0)
        return rc;
    /* The output folder is made when missing (one level, as mkdir does). */
    if (o.output_dir && mkdir(o.output_dir, 0777) != 0 && errno != EEXIST)
        return cli_fail(EXIT_BAD_INPUT, "%s: cannot create the output folder: %s", o.output_dir, strerror(errno));
    CliSession cs;
    rc = cli_session_open(&o, &cs);
    if (rc < 0) {
        crun_status st = crun_session_run(cs.session);
        if (st != CRUN_OK)
            rc = cli_fail(cli_exit_code(st, true), "%s", crun_last_error());
    }
    char *labels = rc < 0 && o.top > 0 ? read_labels(o.labels, cs.model) : NULL;
    if (rc < 0 && o.top > 0 && o.labels && !labels)
        rc = cli_fail(EXIT_BAD_INPUT, "%s: cannot read labels", o.labels);
    int n_out = rc < 0 ? crun_model_output_count(cs.model) : 0;
    for (int i = 0; i < n_out && rc < 0; i++) {
        crun_tensor t;
        crun_session_get_output(cs.session, i, &t);
        char sh[128];
        printf("%s: %s %s ", t.name, crun_dtype_name(t.dtype), shape_str(t.dims, t.rank, sh, sizeof sh));
        cli_print_values(stdout, &t, 8);
        printf("\n");
        if (o.top > 0)
            print_top(&t, o.top, labels);
        if (o.output_dir)
            rc = cli_write_output(o.output_dir, &t);
    }
    free(labels);
    cli_session_close(&cs);
    return rc < 0 ? EXIT_OK : rc;
}
