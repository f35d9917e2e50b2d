/* cli_profile.c - `crun profile MODEL`: where a run's time goes, step by step, and a
 * Chrome / Perfetto trace of the last run. */
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char usage[] =
    "usage: crun profile MODEL [--runs N] [--warmup N] [--threads N] [--trace OUT.json] [--input NAME=FILE]...\n"
    "                          [--dim SYM=VALUE]... [--isa ISA] [--backend native|xnnpack|auto]\n"
    "Times every planned step over --runs runs (after --warmup untimed ones) and prints one\n"
    "line per step, slowest first: node, op (with what was fused), kernel, ISA, precision,\n"
    "output shape, mean time, share of the total, GFLOP/s and bytes moved (read + written).\n"
    "--trace writes the last run as trace events that chrome://tracing and Perfetto open.\n";

typedef struct Row {
    int index;
    crun_step_info info;
    crun_step_profile prof;
} Row;

static int by_time(const void *a, const void *b)
{
    double x = ((const Row *)a)->prof.total_ms, y = ((const Row *)b)->prof.total_ms;
    return x < y ? 1 : x > y ? -1 : ((const Row *)a)->index - ((const Row *)b)->index;
}

/* A JSON string body: quotes, backslashes and control characters escaped. */
static void json_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static int write_trace(const char *path, const Row *rows, int n, int threads)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_fail(EXIT_BAD_INPUT, "cannot write trace '%s'", path);
    fprintf(f, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"threads\": %d}, \"traceEvents\": [\n", threads);
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        fprintf(f, "%s{\"name\": \"", i ? ",\n" : "");
        json_str(f, r->info.node_name);
        fprintf(f, "\", \"cat\": \"");
        json_str(f, r->info.op_type);
        fprintf(f, "\", \"ph\": \"X\", \"pid\": 1, \"tid\": 1, \"ts\": %.3f, \"dur\": %.3f, \"args\": {\"kernel\": \"",
                r->prof.last_start_ms * 1e3, r->prof.last_ms * 1e3);
        json_str(f, r->info.kernel);
        fprintf(f, "\", \"isa\": \"%s\", \"fused\": \"", r->info.isa);
        json_str(f, r->info.fused);
        fprintf(f, "\", \"step\": %d}}", r->index);
    }
    fprintf(f, "\n]}\n");
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    return ok ? -1 : cli_fail(EXIT_RUN_FAILED, "error writing trace '%s'", path);
}

static void print_table(const Row *rows, int n, double total_ms, int runs)
{
    printf("  %-4s %-28s %-24s %-26s %-10s %-8s %-20s %9s %6s %8s %10s\n", "#", "node", "op", "kernel", "isa",
           "dtype", "shape", "ms", "%", "GFLOP/s", "MB moved");
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        char op[64], shape[64];
        snprintf(op, sizeof op, "%s%s%s", r->info.op_type, r->info.fused[0] ? "+" : "", r->info.fused);
        if (r->info.rank >= 0)
            shape_str(r->info.dims, r->info.rank, shape, sizeof shape);
        else
            snprintf(shape, sizeof shape, "-");
        double ms = r->prof.total_ms / runs;
        double gflops = ms > 0 ? (double)r->info.flops / (ms * 1e6) : 0;
        double mb = (double)(r->info.bytes_in + (r->info.size_bytes > 0 ? r->info.size_bytes : 0)) / 1e6;
        printf("  %-4d %-28.28s %-24.24s %-26.26s %-10s %-8s %-20.20s %9.4f %6.2f %8.2f %10.3f\n", r->index,
               r->info.node_name, op, r->info.kernel, r->info.isa, crun_dtype_name(r->info.precision), shape, ms,
               total_ms > 0 ? 100.0 * r->prof.total_ms / total_ms : 0, gflops, mb);
    }
}

int cmd_profile(int argc, char **argv)
{
    CliOptions o;
    int rc = cli_parse(argc, argv, 1, &o, usage);
    if (rc >= 0)
        return rc;
    CliSession cs;
    rc = cli_session_open(&o, &cs);
    for (int i = 0; i < o.warmup + 1 && rc < 0; i++) { /* the first run also plans */
        crun_status st = crun_session_run(cs.session);
        if (st != CRUN_OK)
            rc = cli_fail(cli_exit_code(st, true), "%s", crun_last_error());
    }
    if (rc < 0 && crun_session_set_profiling(cs.session, 1) != CRUN_OK)
        rc = cli_fail(EXIT_RUN_FAILED, "%s", crun_last_error());
    double wall = 0;
    for (int i = 0; i < o.runs && rc < 0; i++) {
        double t0 = cli_now();
        crun_status st = crun_session_run(cs.session);
        wall += cli_now() - t0;
        if (st != CRUN_OK)
            rc = cli_fail(cli_exit_code(st, true), "%s", crun_last_error());
    }
    int n = rc < 0 ? crun_session_step_count(cs.session) : 0;
    Row *rows = calloc((size_t)n + 1, sizeof *rows);
    if (rc < 0 && !rows)
        rc = cli_fail(EXIT_RUN_FAILED, "out of memory");
    double total = 0;
    for (int i = 0; i < n && rc < 0; i++) {
        rows[i].index = i;
        if (crun_session_step_info(cs.session, i, &rows[i].info) != CRUN_OK ||
            crun_session_step_profile(cs.session, i, &rows[i].prof) != CRUN_OK)
            rc = cli_fail(EXIT_RUN_FAILED, "%s", crun_last_error());
        total += rows[i].prof.total_ms;
    }
    if (rc < 0 && o.trace)
        rc = write_trace(o.trace, rows, n, crun_session_threads(cs.session));
    if (rc < 0) {
        qsort(rows, (size_t)n, sizeof *rows, by_time);
        printf("model: %s (%d threads, %d runs after %d warm-up)\n", o.model, crun_session_threads(cs.session),
               o.runs, o.warmup);
        printf("run: %.3f ms mean wall time, %.3f ms in steps\n", wall * 1e3 / o.runs, total / o.runs);
        print_table(rows, n, total, o.runs);
        if (o.trace)
            printf("trace: %s (open in chrome://tracing or ui.perfetto.dev)\n", o.trace);
        rc = EXIT_OK;
    }
    free(rows);
    cli_session_close(&cs);
    return rc;
}
