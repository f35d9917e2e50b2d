/* cli_common.c - option parsing, input binding and output helpers of the command line. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loaders/tensor_file.h"
#include "ops/registry.h"
#include "platforms/cpu.h"
#include "tools/cli.h"

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("crun: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_exit_code(crun_status st, bool running)
{
    if (st == CRUN_ERR_RUNTIME || (running && st == CRUN_ERR_OUT_OF_MEMORY))
        return EXIT_RUN_FAILED;
    return EXIT_BAD_INPUT;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool cli_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1048576.0; end++; break;
    case 'g': case 'G': mult = 1073741824.0; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (errno || end == s || *end || !(v > 0) || v * mult > 1e18)
        return false;
    *out = (size_t)(v * mult);
    return true;
}

/* Splits "NAME=VALUE" at the last '=' (names may contain '='; file paths rarely do). */
static bool split_eq(char *arg, char **name, char **value)
{
    char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return false;
    *eq = 0;
    *name = arg;
    *value = eq + 1;
    return true;
}

int cli_parse_dim(char *arg, long long min, crun_dim_value *out)
{
    char *name, *value;
    long long n;
    if (!split_eq(arg, &name, &value))
        return cli_fail(EXIT_BAD_INPUT, "--dim expects NAME=VALUE, got '%s'", arg);
    if (!parse_int(value, min, CRUN_MAX_NUMEL, &n))
        return cli_fail(EXIT_BAD_INPUT, "--dim %s: '%s' is not a %s integer", name, value,
                        min > 0 ? "positive" : "non-negative");
    *out = (crun_dim_value){name, n};
    return -1;
}

int cli_parse(int argc, char **argv, int first, CliOptions *o, const char *usage)
{
    memset(o, 0, sizeof *o);
    o->threads = 0;
    o->warmup = 5;
    o->runs = 30;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s", usage);
            return EXIT_OK;
        }
        bool takes_value = !strcmp(a, "--input") || !strcmp(a, "--dim") || !strcmp(a, "--threads") ||
                           !strcmp(a, "--output-dir") || !strcmp(a, "--labels") || !strcmp(a, "--top") ||
                           !strcmp(a, "--warmup") || !strcmp(a, "--runs") || !strcmp(a, "--isa") || !strcmp(a, "--backend") ||
                           !strcmp(a, "--max-memory") || !strcmp(a, "--trace") ||
                           !strcmp(a, "--plan-svg");
        if (takes_value && !val)
            return cli_fail(EXIT_BAD_INPUT, "%s needs a value", a);
        if (!strcmp(a, "--input") || !strcmp(a, "--dim")) {
            bool is_input = a[2] == 'i';
            if ((is_input ? o->n_inputs : o->n_dims) == CLI_MAX_ITEMS)
                return cli_fail(EXIT_BAD_INPUT, "too many %s options", a);
            if (!is_input) {
                int rc = cli_parse_dim(argv[++i], 0, &o->dims[o->n_dims]);
                if (rc >= 0)
                    return rc;
                o->n_dims++;
                continue;
            }
            char *name, *value;
            if (!split_eq(argv[++i], &name, &value))
                return cli_fail(EXIT_BAD_INPUT, "--input expects NAME=FILE, got '%s'", argv[i]);
            o->inputs[o->n_inputs++] = (CliInput){name, value};
        } else if (!strcmp(a, "--threads") || !strcmp(a, "--top") || !strcmp(a, "--warmup") ||
                   !strcmp(a, "--runs")) {
            if (!parse_int(argv[++i], 0, 100000, &n))
                return cli_fail(EXIT_BAD_INPUT, "%s: '%s' is not a valid count", a, argv[i]);
            if (!strcmp(a, "--threads"))
                o->threads = (int)n;
            else if (!strcmp(a, "--top"))
                o->top = (int)n;
            else if (!strcmp(a, "--warmup"))
                o->warmup = (int)n;
            else
                o->runs = (int)(n ? n : 1);
        } else if (!strcmp(a, "--output-dir")) {
            o->output_dir = argv[++i];
        } else if (!strcmp(a, "--labels")) {
            o->labels = argv[++i];
        } else if (!strcmp(a, "--isa")) {
            o->isa = argv[++i];
        } else if (!strcmp(a, "--backend")) {
            int rc = cli_parse_backend(argv[++i], &o->backend);
            if (rc >= 0)
                return rc;
        } else if (!strcmp(a, "--trace")) {
            o->trace = argv[++i];
        } else if (!strcmp(a, "--plan-svg")) {
            o->plan_svg = argv[++i];
        } else if (!strcmp(a, "--max-memory")) {
            size_t cap;
            if (!cli_parse_size(argv[++i], &cap))
                return cli_fail(EXIT_BAD_INPUT, "--max-memory: '%s' is not a size (e.g. 512M, 2G)", argv[i]);
            crun_set_memory_limit(cap);
        } else if (!strcmp(a, "--nodes")) {
            o->nodes = true;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_BAD_INPUT, "unknown option '%s' (see --help)", a);
        } else if (o->model) {
            return cli_fail(EXIT_BAD_INPUT, "more than one model given ('%s' and '%s')", o->model, a);
        } else {
            o->model = a;
        }
    }
    if (!o->model)
        return cli_fail(EXIT_BAD_INPUT, "no model given\n%s", usage);
    if (o->isa) {
        Isa isa;
        if (!isa_parse(o->isa, &isa))
            return cli_fail(EXIT_BAD_INPUT, "--isa: unknown instruction set '%s'", o->isa);
        isa_set_limit(isa);
    }
    return -1;
}

int cli_parse_backend(const char *name, crun_backend *out)
{
    static const char *const names[] = {"native", "xnnpack", "auto"};
    for (int b = 0; b < 3; b++)
        if (!strcmp(name, names[b])) {
            *out = (crun_backend)b;
            if (!crun_backend_available(*out))
                return cli_fail(EXIT_BAD_INPUT, "--backend %s: this build of crun has no XNNPACK (install "
                                                "libxnnpack-dev and build again)", name);
            return -1;
        }
    return cli_fail(EXIT_BAD_INPUT, "--backend: unknown backend '%s' (native, xnnpack, auto)", name);
}

/* ---- inputs ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: a fixed sequence, so generated inputs are the same on every run. */
static float rng_uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 0x2545f4914f6cdd1dull) >> 40) / 16777216.0f;
}

static int64_t dim_for(const CliOptions *o, const crun_tensor_info *info, int k)
{
    if (info->dims[k] >= 0)
        return info->dims[k];
    for (int i = 0; info->dim_names[k] && i < o->n_dims; i++)
        if (!strcmp(o->dims[i].name, info->dim_names[k]))
            return o->dims[i].value;
    return 1;
}

/* Inputs not given: floats uniform in [0, 1), everything else zero. */
static int generate_input(const CliOptions *o, const crun_tensor_info *info, Tensor *t)
{
    if (info->rank < 0)
        return cli_fail(EXIT_BAD_INPUT, "%s: input '%s' has no shape in the model; give it with --input", o->model,
                        info->name);
    if (info->dtype == CRUN_DTYPE_STRING || info->dtype == CRUN_DTYPE_UNDEFINED)
        return cli_fail(EXIT_BAD_INPUT, "%s: input '%s' (%s) cannot be generated; give it with --input", o->model,
                        info->name, crun_dtype_name(info->dtype));
    t->dtype = info->dtype;
    t->rank = info->rank;
    for (int k = 0; k < t->rank; k++)
        t->dims[k] = dim_for(o, info, k);
    int64_t n = tensor_numel(t);
    if (n < 0)
        return cli_fail(EXIT_BAD_INPUT, "%s: input '%s' would be too large", o->model, info->name);
    t->data = mem_calloc_aligned(tensor_bytes(t));
    if (!t->data)
        return cli_fail(EXIT_RUN_FAILED, "out of memory generating input '%s'", info->name);
    if (t->dtype == CRUN_DTYPE_FLOAT)
        for (int64_t i = 0; i < n; i++)
            ((float *)t->data)[i] = rng_uniform();
    else if (t->dtype == CRUN_DTYPE_DOUBLE)
        for (int64_t i = 0; i < n; i++)
            ((double *)t->data)[i] = rng_uniform();
    return -1;
}

static int load_input(const CliOptions *o, int index, const char *path, Tensor *t)
{
    Diag d = {0};
    if (tensor_file_read(path, t, NULL, &d) != CRUN_OK)
        return cli_fail(EXIT_BAD_INPUT, "%s", d.msg);
    (void)o;
    (void)index;
    return -1;
}

int cli_compiled_threads(const crun_model *m, const CliOptions *o)
{
    crun_compile_info ci;
    if (o->threads || crun_model_compiled_info(m, &ci) != CRUN_OK)
        return o->threads;
    return ci.threads;
}

int cli_session_open(const CliOptions *o, CliSession *cs)
{
    memset(cs, 0, sizeof *cs);
    double t0 = cli_now();
    crun_status st = crun_model_load_file(o->model, &cs->model);
    if (st != CRUN_OK)
        return cli_fail(cli_exit_code(st, false), "%s", crun_last_error());
    cs->load_ms = (cli_now() - t0) * 1e3;
    int threads = cli_compiled_threads(cs->model, o);
    int n_in = crun_model_input_count(cs->model);
    cs->data = calloc((size_t)n_in + 1, sizeof *cs->data);
    if (!cs->data)
        return cli_fail(EXIT_RUN_FAILED, "out of memory");
    for (int i = 0; i < o->n_inputs; i++)
        if (crun_model_find_input(cs->model, o->inputs[i].name) < 0)
            return cli_fail(EXIT_BAD_INPUT, "%s: the model has no input named '%s'", o->model, o->inputs[i].name);
    for (int i = 0; i < n_in; i++) {
        crun_tensor_info info;
        crun_model_input_info(cs->model, i, &info);
        const char *path = NULL;
        for (int k = 0; k < o->n_inputs; k++)
            if (!strcmp(o->inputs[k].name, info.name))
                path = o->inputs[k].path;
        int rc = path ? load_input(o, i, path, &cs->data[i]) : generate_input(o, &info, &cs->data[i]);
        if (rc >= 0)
            return rc;
    }
    /* Symbolic dims take their values from --dim, then from the input files, so the
     * session is planned for the shapes it will run. */
    crun_dim_value dims[CLI_MAX_ITEMS];
    int n_dims = o->n_dims;
    memcpy(dims, o->dims, (size_t)n_dims * sizeof *dims);
    for (int i = 0; i < n_in; i++) {
        crun_tensor_info info;
        crun_model_input_info(cs->model, i, &info);
        for (int k = 0; k < info.rank && k < cs->data[i].rank; k++) {
            bool known = false;
            for (int j = 0; j < n_dims && info.dim_names[k]; j++)
                known |= !strcmp(dims[j].name, info.dim_names[k]);
            if (info.dim_names[k] && !known && n_dims < CLI_MAX_ITEMS)
                dims[n_dims++] = (crun_dim_value){info.dim_names[k], cs->data[i].dims[k]};
        }
    }
    crun_session_options so;
    crun_session_options_init(&so);
    so.threads = threads;
    so.backend = o->backend;
    so.dims = dims;
    so.n_dims = (size_t)n_dims;
    t0 = cli_now();
    st = crun_session_create(cs->model, &so, &cs->session);
    if (st != CRUN_OK)
        return cli_fail(cli_exit_code(st, false), "%s", crun_last_error());
    for (int i = 0; i < n_in; i++) {
        const Tensor *t = &cs->data[i];
        st = crun_session_set_input(cs->session, i, t->dtype, t->rank, t->dims, t->data);
        if (st != CRUN_OK)
            return cli_fail(EXIT_BAD_INPUT, "%s", crun_last_error());
    }
    cs->plan_ms = (cli_now() - t0) * 1e3;
    return -1;
}

void cli_session_close(CliSession *cs)
{
    if (cs->data && cs->model) {
        int n = crun_model_input_count(cs->model);
        for (int i = 0; i < n; i++)
            tensor_file_free(&cs->data[i]);
    }
    free(cs->data);
    crun_session_free(cs->session);
    crun_model_free(cs->model);
    memset(cs, 0, sizeof *cs);
}

/* ---- outputs ---- */

void cli_print_values(FILE *f, const crun_tensor *t, int max_values)
{
    Tensor v = {.dtype = t->dtype, .rank = t->rank, .data = (void *)t->data};
    memcpy(v.dims, t->dims, sizeof v.dims);
    int64_t n = tensor_numel(&v);
    fputc('[', f);
    for (int64_t i = 0; i < n && i < max_values; i++) {
        if (i)
            fputs(", ", f);
        if (t->dtype == CRUN_DTYPE_STRING)
            fprintf(f, "\"%s\"", ((const char *const *)t->data)[i]);
        else if (dtype_is_float(t->dtype))
            fprintf(f, "%.6g", tensor_get_double(&v, i));
        else
            fprintf(f, "%lld", (long long)tensor_get_int(&v, i));
    }
    if (n > max_values)
        fputs(", ...", f);
    fputc(']', f);
}

int cli_write_output(const char *dir, const crun_tensor *t)
{
    char name[256], path[4096];
    size_t i = 0;
    for (; t->name[i] && i + 1 < sizeof name; i++) {
        char c = t->name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        name[i] = ok ? c : '_';
    }
    name[i] = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/%s.npy", dir, name) >= sizeof path)
        return cli_fail(EXIT_BAD_INPUT, "output path too long");
    Tensor v = {.dtype = t->dtype, .rank = t->rank, .data = (void *)t->data};
    memcpy(v.dims, t->dims, sizeof v.dims);
    Diag d = {0};
    if (npy_write(path, &v, &d) != CRUN_OK)
        return cli_fail(EXIT_BAD_INPUT, "%s", d.msg);
    return -1;
}
