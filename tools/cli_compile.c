/* cli_compile.c - `crun compile MODEL -o OUT.crun`: plan once, write the planned model. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

static const char usage[] =
    "usage: crun compile MODEL -o OUT.crun [--dim SYM=VALUE]... [--threads N] [--isa ISA]\n"
    "                    [--int8 [--calib DIR | --calib-random N] [--method minmax|percentile|entropy]]\n"
    "       crun compile MODEL --emit-c DIR [--name NAME] [--dim SYM=VALUE]... [--int8 ...]\n"
    "Optimises MODEL, plans it for fixed input shapes (symbolic dims from --dim, default 1), N\n"
    "threads (default 1) and an instruction set (default: the best this CPU has), packs every\n"
    "weight for the kernels chosen and writes it all to OUT.crun, which `crun OUT.crun`, the C API\n"
    "and the Python package load by mapping the file: no parsing and no packing at start-up.\n"
    "Prints the exact arena (and static workspace) bytes the model needs. --int8 quantizes MODEL\n"
    "first, as `crun quantize` would, and compiles the result. The file is tied to this crun\n"
    "build and architecture: other builds and CPUs without ISA refuse it with a message.\n"
    "--emit-c writes DIR/NAME.h and DIR/NAME.c (NAME default 'model') for a microcontroller build:\n"
    "the compiled model (portable kernels only: --isa scalar, one thread) as a C array, a static\n"
    "buffer of the exact size it runs in, and NAME_run(inputs, outputs), which never allocates.\n"
    "Link them with a libcrun built for the target.\n";

typedef struct CompileArgs {
    const char *model, *out, *emit_dir, *name;
    crun_compile_options co;
    crun_dim_value dims[CLI_MAX_ITEMS];
    bool int8, calib; /* calib: a calibration option was given */
    crun_quantize_options qo;
} CompileArgs;

static int parse_value(CompileArgs *a, const char *opt, char *v)
{
    if (!strcmp(opt, "-o")) {
        a->out = v;
    } else if (!strcmp(opt, "--emit-c")) {
        a->emit_dir = v;
    } else if (!strcmp(opt, "--name")) {
        a->name = v;
    } else if (!strcmp(opt, "--dim")) {
        if (a->co.n_dims == CLI_MAX_ITEMS)
            return cli_fail(EXIT_BAD_INPUT, "too many --dim options");
        int rc = cli_parse_dim(v, 0, &a->dims[a->co.n_dims]);
        if (rc >= 0)
            return rc;
        a->co.n_dims++;
    } else if (!strcmp(opt, "--threads")) {
        a->co.threads = atoi(v);
        if (a->co.threads < 1)
            return cli_fail(EXIT_BAD_INPUT, "--threads needs a positive count (got '%s')", v);
    } else if (!strcmp(opt, "--isa")) {
        a->co.isa = v;
    } else if (!strcmp(opt, "--calib")) {
        a->qo.calib_dir = v;
    } else if (!strcmp(opt, "--calib-random")) {
        a->qo.calib_random = atoi(v);
        if (a->qo.calib_random <= 0)
            return cli_fail(EXIT_BAD_INPUT, "--calib-random needs a positive count (got '%s')", v);
    } else if (!strcmp(opt, "--method")) {
        if (!strcmp(v, "minmax"))
            a->qo.method = CRUN_CALIB_MINMAX;
        else if (!strcmp(v, "percentile"))
            a->qo.method = CRUN_CALIB_PERCENTILE;
        else if (!strcmp(v, "entropy"))
            a->qo.method = CRUN_CALIB_ENTROPY;
        else
            return cli_fail(EXIT_BAD_INPUT, "--method: unknown method '%s'", v);
    }
    a->calib |= !strncmp(opt, "--calib", 7) || !strcmp(opt, "--method");
    return -1;
}

static int parse(int argc, char **argv, CompileArgs *a)
{
    crun_compile_options_init(&a->co);
    crun_quantize_options_init(&a->qo);
    a->co.dims = a->dims;
    static const char *const takes[] = {"-o",      "--dim",   "--threads",      "--isa",   "--calib",
                                        "--calib-random", "--method", "--emit-c", "--name"};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        bool value = false;
        for (size_t k = 0; k < CRUN_ARRAY_LEN(takes); k++)
            value |= !strcmp(opt, takes[k]);
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        } else if (value && i + 1 >= argc) {
            return cli_fail(EXIT_BAD_INPUT, "%s needs a value (see crun compile --help)", opt);
        } else if (value) {
            int rc = parse_value(a, opt, argv[++i]);
            if (rc >= 0)
                return rc;
        } else if (!strcmp(opt, "--int8")) {
            a->int8 = true;
        } else if (opt[0] != '-' && !a->model) {
            a->model = opt;
        } else {
            return cli_fail(EXIT_BAD_INPUT, "unexpected argument '%s' (see crun compile --help)", opt);
        }
    }
    if (!a->model || (!a->out && !a->emit_dir) || (a->out && a->emit_dir))
        return cli_fail(EXIT_BAD_INPUT, "compile needs a MODEL and one of -o OUT or --emit-c DIR (see crun compile "
                                        "--help)");
    if (a->emit_dir && ((a->co.isa && strcmp(a->co.isa, "scalar")) || a->co.threads > 1))
        return cli_fail(EXIT_BAD_INPUT, "--emit-c runs the portable kernels on one thread: no --isa or --threads");
#ifdef CRUN_SELECTIVE /* a deploy build: C is emitted on the development machine */
    if (a->emit_dir)
        return cli_fail(EXIT_BAD_INPUT, "--emit-c is not in this selective build (use a full build)");
#endif
    if (a->emit_dir)
        a->co.isa = "scalar";
    if (a->name && !a->emit_dir)
        return cli_fail(EXIT_BAD_INPUT, "--name goes with --emit-c");
    if (!a->int8 && a->calib)
        return cli_fail(EXIT_BAD_INPUT, "--calib, --calib-random and --method go with --int8");
    return -1;
}

static void print_mib(const char *label, size_t bytes) { printf("%s%.2f MiB", label, (double)bytes / (1 << 20)); }

/* Quantizes a->model into a temporary file next to the output; its path goes to tmp. */
static int quantize_first(CompileArgs *a, char *tmp, size_t cap)
{
#ifdef CRUN_SELECTIVE /* no quantizer in a selective build */
    (void)a, (void)tmp, (void)cap;
    return cli_fail(EXIT_BAD_INPUT, "--int8: this selective build has no quantizer (quantize with a full build)");
#else
    snprintf(tmp, cap, "%s.int8-XXXXXX", a->out);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return cli_fail(EXIT_RUN_FAILED, "%s: cannot make a temporary file", tmp);
    close(fd);
    a->qo.dims = a->co.dims;
    a->qo.n_dims = (int32_t)a->co.n_dims;
    a->qo.progress = 1;
    crun_status st = crun_quantize_file(a->model, tmp, &a->qo);
    if (st != CRUN_OK) {
        remove(tmp);
        return cli_fail(cli_exit_code(st, false), "%s", crun_last_error());
    }
    return -1;
#endif
}

int cmd_compile(int argc, char **argv)
{
    CompileArgs a;
    memset(&a, 0, sizeof a);
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char tmp[4096] = "", plan[4096] = "";
    if (a.emit_dir) { /* the .crun is only a step: written next to the C files, then removed */
        snprintf(plan, sizeof plan, "%s/%s.crun", a.emit_dir, a.name ? a.name : "model");
        a.out = plan;
    }
    if (a.int8 && (rc = quantize_first(&a, tmp, sizeof tmp)) >= 0)
        return rc;
    crun_compile_info info;
    crun_status st = crun_compile_file(tmp[0] ? tmp : a.model, a.out, &a.co, &info);
    if (tmp[0])
        remove(tmp);
    if (st != CRUN_OK)
        return cli_fail(cli_exit_code(st, false), "%s", crun_last_error());
    if (a.emit_dir) {
#ifndef CRUN_SELECTIVE
        rc = emit_c(plan, a.emit_dir, a.name ? a.name : "model");
#endif
        remove(plan);
        if (rc >= 0)
            return rc;
        printf("wrote %s/%s.c and %s.h: %zu bytes of model, a %zu-byte static buffer, portable kernels\n",
               a.emit_dir, a.name ? a.name : "model", a.name ? a.name : "model", info.file_bytes,
               info.workspace_bytes);
        return EXIT_OK;
    }
    print_mib("wrote ", info.file_bytes);
    printf(" to %s (", a.out);
    print_mib("packed weights ", info.packed_bytes);
    printf("), planned for %d thread%s on %s\n", (int)info.threads, info.threads == 1 ? "" : "s", info.isa);
    printf("arena: %zu bytes\n", info.arena_bytes);
    if (info.workspace_bytes)
        printf("workspace: %zu bytes (model, session and arena in one static buffer)\n", info.workspace_bytes);
    return EXIT_OK;
}
