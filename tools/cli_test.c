/* cli_test.c - `crun test DIR...`: runs folders in the ONNX backend-test layout
 * (model.onnx plus test_data_set_N folders of input_N.pb and output_N.pb) and compares the outputs:
 * floats within rtol 1e-3 / atol 1e-7 (NaN equals NaN), integers, bools and strings exact. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loaders/tensor_file.h"
#include "ops/registry.h"
#include "tools/cli.h"

static const char usage[] =
    "usage: crun test DIR... [--threads N] [--max-memory SIZE]\n"
    "Each DIR is a test case (model.onnx + test_data_set_*/) or a folder of them. Prints\n"
    "PASS|FAIL|ERROR|SKIP <case> <reason> per case and a summary line; exits 1 if any case\n"
    "failed or errored.\n";

#define RTOL 1e-3
#define ATOL 1e-7

typedef struct Counts {
    int pass, fail, error, skip;
} Counts;

typedef struct NameList {
    char **v;
    int n;
} NameList;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Entries of dir starting with prefix, sorted (numbers compare by length first so that
 * input_10 sorts after input_9). */
static int cmp_natural(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t lx = strlen(x), ly = strlen(y);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

static NameList list_dir(const char *dir, const char *prefix, bool natural)
{
    NameList l = {0};
    DIR *d = opendir(dir);
    if (!d)
        return l;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char **p = realloc(l.v, (size_t)(l.n + 1) * sizeof *p);
        if (!p)
            break;
        l.v = p;
        if ((l.v[l.n] = str_dup(e->d_name)) != NULL)
            l.n++;
    }
    closedir(d);
    if (l.n > 1)
        qsort(l.v, (size_t)l.n, sizeof *l.v, natural ? cmp_natural : cmp_str);
    return l;
}

static void list_free(NameList *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static bool float_close(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= ATOL + RTOL * fabs(want);
}

/* Compares; on mismatch writes the reason and returns false. */
static bool compare(const crun_tensor *got, const Tensor *want, char *why, size_t size)
{
    char a[96], b[96];
    if (got->dtype != want->dtype) {
        snprintf(why, size, "output '%s' is %s, expected %s", got->name, crun_dtype_name(got->dtype),
                 dtype_name(want->dtype));
        return false;
    }
    if (!shape_equal(got->dims, got->rank, want->dims, want->rank)) {
        snprintf(why, size, "output '%s' has shape %s, expected %s", got->name, shape_str(got->dims, got->rank, a, 96),
                 shape_str(want->dims, want->rank, b, 96));
        return false;
    }
    Tensor g = {.dtype = got->dtype, .rank = got->rank, .data = (void *)got->data};
    memcpy(g.dims, got->dims, sizeof g.dims);
    int64_t n = tensor_numel(want);
    for (int64_t i = 0; i < n; i++) {
        bool ok;
        if (want->dtype == CRUN_DTYPE_STRING)
            ok = !strcmp(((char *const *)g.data)[i], ((char *const *)want->data)[i]);
        else if (dtype_is_float(want->dtype))
            ok = float_close(tensor_get_double(&g, i), tensor_get_double(want, i));
        else
            ok = tensor_get_int(&g, i) == tensor_get_int(want, i);
        if (!ok) {
            if (dtype_is_float(want->dtype))
                snprintf(why, size, "output '%s' element %lld is %.9g, expected %.9g", got->name, (long long)i,
                         tensor_get_double(&g, i), tensor_get_double(want, i));
            else
                snprintf(why, size, "output '%s' element %lld differs", got->name, (long long)i);
            return false;
        }
    }
    return true;
}

typedef enum Verdict { V_PASS, V_FAIL, V_ERROR, V_SKIP } Verdict;

static crun_tensor public_view(const Tensor *t)
{
    crun_tensor v = {.dtype = t->dtype, .rank = t->rank, .data = t->data, .size_bytes = tensor_bytes(t)};
    memcpy(v.dims, t->dims, sizeof v.dims);
    return v;
}

/* Reads the files of one kind (input_ or output_) as the model's values of that side. */
static Verdict read_values(const crun_model *m, const char *dir, bool inputs, ValueFile **out, int *n, char *why,
                           size_t size)
{
    NameList l = list_dir(dir, inputs ? "input_" : "output_", true);
    int want = inputs ? crun_model_input_count(m) : crun_model_output_count(m);
    *n = 0;
    *out = calloc((size_t)l.n + 1, sizeof **out);
    Verdict v = *out ? V_PASS : V_ERROR;
    if (v == V_PASS && l.n > want) {
        snprintf(why, size, "%d %s files for %d model %ss", l.n, inputs ? "input" : "output", want,
                 inputs ? "input" : "output");
        v = V_ERROR;
    }
    for (int i = 0; i < l.n && v == V_PASS; i++) {
        crun_tensor_info info;
        if (inputs)
            crun_model_input_info(m, i, &info);
        else
            crun_model_output_info(m, i, &info);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, l.v[i]);
        Diag d = {0};
        ValueKind kind = info.kind == CRUN_VALUE_SEQUENCE ? VALUE_SEQUENCE : VALUE_TENSOR;
        if (value_file_read(path, kind, info.optional != 0, &(*out)[i], &d) != CRUN_OK) {
            snprintf(why, size, "cannot read %s: %s", l.v[i], d.msg);
            v = V_ERROR;
            break;
        }
        /* NumPy has no bfloat16, so the suite stores bfloat16 data as uint16 bits. */
        Tensor *t = &(*out)[i].t;
        if (info.dtype == CRUN_DTYPE_BFLOAT16 && t->dtype == CRUN_DTYPE_UINT16)
            t->dtype = CRUN_DTYPE_BFLOAT16;
        (*n)++;
    }
    list_free(&l);
    return v;
}

static void values_free(ValueFile *v, int n)
{
    for (int i = 0; i < n; i++)
        value_file_free(&v[i]);
    free(v);
}

static crun_status bind_value(crun_session *s, int idx, const ValueFile *vf)
{
    if (vf->none)
        return crun_session_set_input_none(s, idx);
    if (vf->kind == VALUE_TENSOR)
        return crun_session_set_input(s, idx, vf->t.dtype, vf->t.rank, vf->t.dims, vf->t.data);
    crun_tensor *items = calloc((size_t)vf->n + 1, sizeof *items);
    if (!items)
        return CRUN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < vf->n; i++)
        items[i] = public_view(&vf->items[i]);
    crun_status st = crun_session_set_input_sequence(s, idx, vf->n, items);
    free(items);
    return st;
}

static bool compare_value(const crun_session *s, int idx, const char *name, const ValueFile *want, char *why,
                          size_t size)
{
    crun_value_kind kind;
    int32_t count;
    if (crun_session_get_output_kind(s, idx, &kind, &count) != CRUN_OK) {
        snprintf(why, size, "no output %d", idx);
        return false;
    }
    crun_value_kind expect = want->none ? CRUN_VALUE_NONE : want->kind == VALUE_SEQUENCE ? CRUN_VALUE_SEQUENCE
                                                                                        : CRUN_VALUE_TENSOR;
    if (kind != expect) {
        snprintf(why, size, "output '%s' holds a %s, expected a %s", name,
                 kind == CRUN_VALUE_NONE ? "no value" : kind == CRUN_VALUE_SEQUENCE ? "sequence" : "tensor",
                 expect == CRUN_VALUE_NONE ? "no value" : expect == CRUN_VALUE_SEQUENCE ? "sequence" : "tensor");
        return false;
    }
    crun_tensor got;
    if (kind == CRUN_VALUE_TENSOR)
        return crun_session_get_output(s, idx, &got) == CRUN_OK && compare(&got, &want->t, why, size);
    if (kind == CRUN_VALUE_SEQUENCE && count != want->n) {
        snprintf(why, size, "output '%s' has %d items, expected %d", name, (int)count, want->n);
        return false;
    }
    for (int i = 0; i < count; i++)
        if (crun_session_get_output_item(s, idx, i, &got) != CRUN_OK || !compare(&got, &want->items[i], why, size))
            return false;
    return true;
}

static Verdict run_data_set(crun_session *s, const crun_model *m, const char *dir, char *why, size_t size)
{
    ValueFile *in = NULL, *want = NULL;
    int n_in = 0, n_want = 0;
    Verdict v = read_values(m, dir, true, &in, &n_in, why, size);
    if (v == V_PASS)
        v = read_values(m, dir, false, &want, &n_want, why, size);
    for (int i = 0; i < n_in && v == V_PASS; i++) {
        /* Inputs go by name when the file names one, else by position. */
        int idx = in[i].name && in[i].name[0] ? crun_model_find_input(m, in[i].name) : -1;
        if (bind_value(s, idx < 0 ? i : idx, &in[i]) != CRUN_OK) {
            snprintf(why, size, "%s", crun_last_error());
            v = V_ERROR;
        }
    }
    if (v == V_PASS && crun_session_run(s) != CRUN_OK) {
        snprintf(why, size, "%s", crun_last_error());
        v = V_ERROR;
    }
    for (int i = 0; i < n_want && v == V_PASS; i++) {
        crun_tensor_info info;
        crun_model_output_info(m, i, &info);
        if (!compare_value(s, i, info.name, &want[i], why, size))
            v = V_FAIL;
    }
    values_free(in, n_in);
    values_free(want, n_want);
    return v;
}

static Verdict run_case(const char *dir, int threads, char *why, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    crun_model *m = NULL;
    if (crun_model_load_file(path, &m) != CRUN_OK) {
        snprintf(why, size, "%s", crun_last_error());
        return V_ERROR;
    }
    NameList sets = list_dir(dir, "test_data_set_", true);
    Verdict v = V_PASS;
    if (!sets.n) {
        snprintf(why, size, "no test_data_set_* folder");
        v = V_SKIP;
    }
    crun_session_options so;
    crun_session_options_init(&so);
    so.threads = threads;
    crun_session *s = NULL;
    /* Plan lazily: inputs with unknown shapes get theirs from the data set. */
    for (int i = 0; i < sets.n && v == V_PASS; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, sets.v[i]);
        crun_session_free(s);
        s = NULL;
        if (crun_session_create(m, &so, &s) != CRUN_OK && strstr(crun_last_error(), "has no shape") == NULL) {
            snprintf(why, size, "%s", crun_last_error());
            v = V_ERROR;
            break;
        }
        if (!s) {
            snprintf(why, size, "an input has no shape in the model (not supported yet)");
            v = V_SKIP;
            break;
        }
        v = run_data_set(s, m, path, why, size);
    }
    crun_session_free(s);
    list_free(&sets);
    crun_model_free(m);
    return v;
}

static void run_tree(const char *dir, int threads, Counts *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (is_file(path)) {
        char why[600] = "";
        Verdict v = run_case(dir, threads, why, sizeof why);
        static const char *const tags[] = {"PASS", "FAIL", "ERROR", "SKIP"};
        const char *name = strrchr(dir, '/');
        name = name && name[1] ? name + 1 : dir;
        printf("%s %s%s%s\n", tags[v], name, why[0] ? " " : "", why);
        fflush(stdout);
        int *slot[] = {&c->pass, &c->fail, &c->error, &c->skip};
        (*slot[v])++;
        return;
    }
    NameList l = list_dir(dir, "", false);
    for (int i = 0; i < l.n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, l.v[i]);
        if (is_dir(path))
            run_tree(path, threads, c);
    }
    list_free(&l);
}

int cmd_test(int argc, char **argv)
{
    int threads = 0, n_dirs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("%s", usage);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "--max-memory") && i + 1 < argc) {
            size_t cap;
            if (!cli_parse_size(argv[++i], &cap))
                return cli_fail(EXIT_BAD_INPUT, "--max-memory: '%s' is not a size (e.g. 512M, 2G)", argv[i]);
            crun_set_memory_limit(cap);
            continue;
        }
        if (argv[i][0] == '-')
            return cli_fail(EXIT_BAD_INPUT, "unknown option '%s'", argv[i]);
        if (!is_dir(argv[i]))
            return cli_fail(EXIT_BAD_INPUT, "%s: not a folder", argv[i]);
        n_dirs++;
    }
    if (!n_dirs)
        return cli_fail(EXIT_BAD_INPUT, "no test folder given\n%s", usage);
    Counts c = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") || !strcmp(argv[i], "--max-memory")) {
            i++;
            continue;
        }
        size_t len = strlen(argv[i]);
        while (len > 1 && argv[i][len - 1] == '/')
            argv[i][--len] = 0;
        run_tree(argv[i], threads, &c);
    }
    printf("%d passed, %d failed, %d skipped\n", c.pass, c.fail + c.error, c.skip);
    return c.fail + c.error ? EXIT_RUN_FAILED : EXIT_OK;
}
