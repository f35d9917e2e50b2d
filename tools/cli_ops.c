/* cli_ops.c - `crun ops MODEL...`: the ops a build must have for these models, the input
 * of a selective build (cmake -DCRUN_OPS=FILE). */
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/model.h"
#include "tools/cli.h"

static const char usage[] =
    "usage: crun ops MODEL... [-o FILE] [--dim SYM=VALUE]...\n"
    "Lists the ops that loading and running the models needs (every node as stored, and as crun\n"
    "runs it after its optimisations), one per line (DOMAIN:OP outside the default domain),\n"
    "sorted, then the kernels a plan of each model (for --dim, default 1) chooses on this CPU as\n"
    "kernel:NAME lines (kernel:* when a model cannot be planned so). A selective build links only\n"
    "these ops, and leaves out the algorithms no kernel line names (Winograd convolution):\n"
    "cmake -DCRUN_OPS=FILE (or -DCRUN_OPS=MODEL).\n";

typedef struct OpSet {
    char **names;
    int n, cap;
    bool oom;
} OpSet;

static void add_name(OpSet *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name))
            return;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **p = realloc(s->names, (size_t)cap * sizeof *p);
        if (!p) {
            s->oom = true;
            return;
        }
        s->names = p;
        s->cap = cap;
    }
    if (!(s->names[s->n] = str_dup(name)))
        s->oom = true;
    else
        s->n++;
}

static void add_op(void *ctx, const char *domain, const char *op)
{
    OpSet *s = ctx;
    const OpDesc *d = op_lookup(domain, op); /* function calls and the like are no ops */
    if (!d || s->oom)
        return;
    char name[256];
    snprintf(name, sizeof name, "%s%s%s", d->domain, d->domain[0] ? ":" : "", d->name);
    add_name(s, name);
}

/* The kernels a one-thread plan of m chooses (kernel:* when it cannot be planned). */
static void add_kernels(OpSet *s, const crun_model *m, const CliOptions *o)
{
    crun_session_options so;
    crun_session_options_init(&so);
    so.threads = 1;
    so.dims = o->dims;
    so.n_dims = (size_t)o->n_dims;
    crun_session *ss = NULL;
    bool ok = crun_session_create(m, &so, &ss) == CRUN_OK && crun_session_plan(ss) == CRUN_OK;
    for (int i = 0; ok && i < crun_session_step_count(ss); i++) {
        crun_step_info si;
        char name[128];
        crun_session_step_info(ss, i, &si);
        snprintf(name, sizeof name, "kernel:%s", si.kernel);
        add_name(s, name);
    }
    if (!ok)
        add_name(s, "kernel:*");
    crun_session_free(ss);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cmd_ops(int argc, char **argv)
{
    const char *out = NULL;
    OpSet s = {0};
    CliOptions o;
    memset(&o, 0, sizeof o);
    int rc = -1, n_models = 0;
    for (int i = 1; i < argc && rc < 0; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            rc = EXIT_OK;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--dim") && i + 1 < argc && o.n_dims < CLI_MAX_ITEMS) {
            rc = cli_parse_dim(argv[++i], 0, &o.dims[o.n_dims++]);
        } else if (argv[i][0] == '-') {
            rc = cli_fail(EXIT_BAD_INPUT, "unexpected argument '%s' (see crun ops --help)", argv[i]);
        } else {
            crun_model *m = NULL;
            if (crun_model_load_file(argv[i], &m) != CRUN_OK)
                rc = cli_fail(EXIT_BAD_INPUT, "%s", crun_last_error());
            else
                model_list_ops(m, add_op, &s);
            if (m)
                add_kernels(&s, m, &o);
            crun_model_free(m);
            n_models++;
        }
    }
    if (rc < 0 && !n_models)
        rc = cli_fail(EXIT_BAD_INPUT, "ops needs at least one MODEL (see crun ops --help)");
    if (rc < 0 && s.oom)
        rc = cli_fail(EXIT_RUN_FAILED, "out of memory");
    FILE *f = rc < 0 ? (out ? fopen(out, "w") : stdout) : NULL;
    if (rc < 0 && !f)
        rc = cli_fail(EXIT_BAD_INPUT, "%s: cannot write", out);
    if (rc < 0) {
        qsort(s.names, (size_t)s.n, sizeof *s.names, by_name);
        for (int i = 0; i < s.n; i++)
            fprintf(f, "%s\n", s.names[i]);
        if (out && fclose(f) != 0)
            rc = cli_fail(EXIT_BAD_INPUT, "%s: write failed", out);
    }
    for (int i = 0; i < s.n; i++)
        free(s.names[i]);
    free(s.names);
    return rc < 0 ? EXIT_OK : rc;
}
