/* cli_info.c - `crun info MODEL`: what the model is and how crun plans it. */
#include <string.h>

#include "tools/cli.h"

static const char usage[] =
    "usage: crun info MODEL [--nodes] [--plan-svg FILE] [--dim SYM=VALUE]... [--threads N] [--max-memory SIZE]\n"
    "                 [--backend native|xnnpack|auto]\n"
    "Prints inputs and outputs, the op histogram, parameters, estimated FLOPs and the memory\n"
    "plan (arena, lower bound, naive sum) for the shapes given by --dim (default 1).\n"
    "--nodes lists every planned step: node, op, kernel, ISA, precision, output shape, arena\n"
    "offset and size. --plan-svg draws the memory plan: steps across, arena offsets down, a box\n"
    "per tensor from its writer to its last reader, coloured by op, the peak marked.\n";

static void print_bytes(const char *label, double bytes)
{
    const char *unit = "B";
    if (bytes >= 1 << 20) {
        bytes /= 1 << 20;
        unit = "MiB";
    } else if (bytes >= 1 << 10) {
        bytes /= 1 << 10;
        unit = "KiB";
    }
    printf("%s%.2f %s", label, bytes, unit);
}

static void print_io(const char *title, const crun_model *m, bool inputs)
{
    int n = inputs ? crun_model_input_count(m) : crun_model_output_count(m);
    printf("%s:\n", title);
    for (int i = 0; i < n; i++) {
        crun_tensor_info t;
        if (inputs)
            crun_model_input_info(m, i, &t);
        else
            crun_model_output_info(m, i, &t);
        printf("  %s: %s ", t.name, crun_dtype_name(t.dtype));
        if (t.rank < 0) {
            printf("(shape unknown)\n");
            continue;
        }
        printf("[");
        for (int k = 0; k < t.rank; k++) {
            if (t.dim_names[k])
                printf("%s%s", k ? "," : "", t.dim_names[k]);
            else if (t.dims[k] < 0)
                printf("%s?", k ? "," : "");
            else
                printf("%s%lld", k ? "," : "", (long long)t.dims[k]);
        }
        printf("]\n");
    }
}

static void print_steps(const crun_session *s)
{
    printf("steps:\n  %-4s %-28s %-20s %-26s %-10s %-8s %-20s %12s %12s\n", "#", "node", "op", "kernel", "isa",
           "dtype", "output shape", "offset", "bytes");
    int n = crun_session_step_count(s);
    for (int i = 0; i < n; i++) {
        crun_step_info si;
        crun_session_step_info(s, i, &si);
        char op[64], sh[96];
        snprintf(op, sizeof op, "%s%s%s", si.op_type, si.fused[0] ? "+" : "", si.fused);
        if (si.rank < 0)
            snprintf(sh, sizeof sh, "(dynamic)");
        else
            shape_str(si.dims, si.rank, sh, sizeof sh);
        char off[32];
        if (si.arena_offset >= 0)
            snprintf(off, sizeof off, "%lld", (long long)si.arena_offset);
        else
            snprintf(off, sizeof off, "-");
        printf("  %-4d %-28.28s %-20.20s %-26.26s %-10s %-8s %-20.20s %12s %12lld\n", i, si.node_name, op, si.kernel,
               si.isa, crun_dtype_name(si.precision), sh, off, (long long)si.size_bytes);
    }
}

int cmd_info(int argc, char **argv)
{
    CliOptions o;
    int rc = cli_parse(argc, argv, 1, &o, usage);
    if (rc >= 0)
        return rc;
    crun_model *m = NULL;
    crun_status st = crun_model_load_file(o.model, &m);
    if (st != CRUN_OK)
        return cli_fail(cli_exit_code(st, false), "%s", crun_last_error());
    crun_model_summary sum;
    crun_model_get_summary(m, &sum);
    printf("model: %s\n  ir_version %lld, opset %lld, producer '%s'\n", o.model, (long long)sum.ir_version,
           (long long)sum.opset, sum.producer);
    print_io("inputs", m, true);
    print_io("outputs", m, false);
    printf("ops (%lld nodes):", (long long)sum.node_count);
    for (int i = 0; i < sum.op_type_count; i++) {
        const char *op;
        int64_t count;
        crun_model_op_histogram(m, i, &op, &count);
        printf("%s %s %lld", i ? "," : "", op, (long long)count);
    }
    printf("\nparameters: %lld (", (long long)sum.param_count);
    print_bytes("", (double)sum.param_bytes);
    printf(")\n");
    crun_compile_info ci;
    if (crun_model_compiled_info(m, &ci) == CRUN_OK) {
        if (crun_model_verify(m) != CRUN_OK) {
            rc = cli_fail(EXIT_BAD_INPUT, "%s", crun_last_error());
            crun_model_free(m);
            return rc;
        }
        printf("compiled: for %s, %d thread%s; arena %zu bytes", ci.isa, (int)ci.threads, ci.threads == 1 ? "" : "s",
               ci.arena_bytes);
        if (ci.workspace_bytes)
            printf(", static workspace %zu bytes", ci.workspace_bytes);
        print_bytes("; file ", (double)ci.file_bytes);
        print_bytes(" (packed weights ", (double)ci.packed_bytes);
        printf("), checksum ok\n");
    }
    o.threads = cli_compiled_threads(m, &o);

    crun_session_options so;
    crun_session_options_init(&so);
    so.threads = o.threads;
    so.backend = o.backend;
    so.dims = o.dims;
    so.n_dims = (size_t)o.n_dims;
    crun_session *s = NULL;
    st = crun_session_create(m, &so, &s);
    if (st == CRUN_OK)
        st = crun_session_plan(s);
    if (st != CRUN_OK) {
        int rc = cli_fail(cli_exit_code(st, false), "%s%s", crun_last_error(),
                          o.n_dims ? "" : " (symbolic dims default to 1; set them with --dim)");
        crun_session_free(s);
        crun_model_free(m);
        return rc;
    }
    int64_t flops = 0;
    for (int i = 0; i < crun_session_step_count(s); i++) {
        crun_step_info si;
        crun_session_step_info(s, i, &si);
        flops += si.flops;
    }
    crun_memory_info mi;
    crun_session_memory_info(s, &mi);
    printf("plan: %d steps, %d threads\n", crun_session_step_count(s), crun_session_threads(s));
    printf("flops: %.3f GFLOP\n", (double)flops * 1e-9);
    printf("memory: arena %zu bytes, lower bound %zu bytes, naive %zu bytes", mi.arena_bytes, mi.lower_bound_bytes,
           mi.naive_bytes);
    if (mi.lower_bound_bytes)
        printf(" (arena = %.3f x lower bound)", (double)mi.arena_bytes / (double)mi.lower_bound_bytes);
    print_bytes("\nweights in plan: ", (double)mi.weight_bytes);
    printf("\n");
    if (o.nodes)
        print_steps(s);
#ifdef CRUN_SELECTIVE /* a deploy build draws no pictures */
    rc = o.plan_svg ? cli_fail(EXIT_BAD_INPUT, "--plan-svg is not in this selective build") : -1;
#else
    rc = o.plan_svg ? write_plan_svg(s, o.model, o.plan_svg) : -1;
#endif
    if (o.plan_svg && rc < 0)
        printf("plan picture: %s\n", o.plan_svg);
    crun_session_free(s);
    crun_model_free(m);
    return rc < 0 ? EXIT_OK : rc;
}
