/* cli_quantize.c - `crun quantize MODEL -o OUT`: post-training quantization to a QDQ model,
 * or weight-only 4-bit quantization (--int4). */
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char usage[] =
    "usage: crun quantize MODEL -o OUT.onnx [--calib DIR | --calib-random N] [--method minmax|percentile|entropy]\n"
    "                     [--percentile P] [--per-channel | --per-tensor] [--exclude NODE]... [--dim SYM=VALUE]...\n"
    "                     [--sensitivity TOL] [--threads N]\n"
    "       crun quantize MODEL -o OUT.onnx --int4 [--block-size 32] [--exclude NODE]...\n"
    "Runs MODEL on calibration samples (DIR's .npy files in name order, k consecutive files per\n"
    "sample for a k-input model; or N random inputs, 16 by default), picks an 8-bit range for\n"
    "every input and output of Conv, MatMul, Gemm, Add and MaxPool by --method (default minmax),\n"
    "and writes a standard QDQ model: uint8 activations, int8 symmetric weights (per output\n"
    "channel by default), int32 biases. crun runs its QDQ patterns as integer kernels.\n"
    "--dim sets symbolic input dims for random inputs and planning (default 1).\n"
    "--sensitivity TOL (e.g. 0.05) keeps the ops that quantize worst in float: each op is tried\n"
    "alone in int8 on up to 16 calibration samples, and the fewest most sensitive ones stay float\n"
    "for the model's outputs to differ from float by at most TOL (relative RMS) on those samples.\n"
    "--int4 quantizes only weights, with no calibration: each MatMul/Gemm with constant weights\n"
    "becomes a com.microsoft MatMulNBits (4-bit codes in blocks of --block-size weights, a float16\n"
    "scale and a zero point per block); activations and other ops stay float.\n";

int cmd_quantize(int argc, char **argv)
{
    crun_quantize_options o;
    crun_quantize_options_init(&o);
    o.progress = 1;
    const char *model = NULL, *out = NULL;
    const char *exclude[CLI_MAX_ITEMS];
    crun_dim_value dims[CLI_MAX_ITEMS];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "-o") || !strcmp(a, "--calib") || !strcmp(a, "--calib-random") ||
                     !strcmp(a, "--method") || !strcmp(a, "--percentile") || !strcmp(a, "--exclude") ||
                     !strcmp(a, "--sensitivity") ||
                     !strcmp(a, "--threads") || !strcmp(a, "--dim") || !strcmp(a, "--block-size");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (takes && !v)
            return cli_fail(EXIT_BAD_INPUT, "%s needs a value (see crun quantize --help)", a);
        if (!strcmp(a, "-o")) {
            out = v;
        } else if (!strcmp(a, "--calib")) {
            o.calib_dir = v;
        } else if (!strcmp(a, "--calib-random")) {
            o.calib_random = atoi(v);
            if (o.calib_random <= 0)
                return cli_fail(EXIT_BAD_INPUT, "--calib-random needs a positive count (got '%s')", v);
        } else if (!strcmp(a, "--method")) {
            if (!strcmp(v, "minmax"))
                o.method = CRUN_CALIB_MINMAX;
            else if (!strcmp(v, "percentile"))
                o.method = CRUN_CALIB_PERCENTILE;
            else if (!strcmp(v, "entropy"))
                o.method = CRUN_CALIB_ENTROPY;
            else
                return cli_fail(EXIT_BAD_INPUT, "unknown --method '%s' (minmax, percentile or entropy)", v);
        } else if (!strcmp(a, "--sensitivity")) {
            char *end;
            o.sensitivity = strtof(v, &end);
            if (*end || !(o.sensitivity > 0 && o.sensitivity < 10))
                return cli_fail(EXIT_BAD_INPUT, "--sensitivity must be a tolerance in (0, 10), e.g. 0.05 (got '%s')", v);
        } else if (!strcmp(a, "--percentile")) {
            o.percentile = (float)atof(v);
            if (!(o.percentile > 0 && o.percentile <= 100))
                return cli_fail(EXIT_BAD_INPUT, "--percentile must be in (0, 100] (got '%s')", v);
        } else if (!strcmp(a, "--exclude")) {
            if (o.n_exclude == CLI_MAX_ITEMS)
                return cli_fail(EXIT_BAD_INPUT, "too many --exclude options (at most %d)", CLI_MAX_ITEMS);
            exclude[o.n_exclude++] = v;
        } else if (!strcmp(a, "--dim")) {
            if (o.n_dims == CLI_MAX_ITEMS)
                return cli_fail(EXIT_BAD_INPUT, "too many --dim options (at most %d)", CLI_MAX_ITEMS);
            int rc = cli_parse_dim(argv[i + 1], 1, &dims[o.n_dims]);
            if (rc >= 0)
                return rc;
            o.n_dims++;
        } else if (!strcmp(a, "--threads")) {
            o.threads = atoi(v);
        } else if (!strcmp(a, "--block-size")) {
            o.block_size = atoi(v);
        } else if (!strcmp(a, "--int4")) {
            o.weight_bits = 4;
            continue;
        } else if (!strcmp(a, "--per-channel")) {
            o.per_channel = 1;
            continue;
        } else if (!strcmp(a, "--per-tensor")) {
            o.per_channel = 0;
            continue;
        } else if (a[0] == '-' || model) {
            return cli_fail(EXIT_BAD_INPUT, "unexpected argument '%s' (see crun quantize --help)", a);
        } else {
            model = a;
            continue;
        }
        i++;
    }
    if (!model || !out)
        return cli_fail(EXIT_BAD_INPUT, "quantize needs a MODEL and -o OUT (see crun quantize --help)");
    o.exclude = exclude;
    o.dims = dims;
    crun_status st = crun_quantize_file(model, out, &o);
    if (st != CRUN_OK) { /* a node's shape check failing is often a symbolic dim left at 1 */
        bool hint = o.n_dims == 0 && strstr(crun_last_error(), "node '");
        return cli_fail(cli_exit_code(st, false), "%s%s", crun_last_error(),
                        hint ? " (symbolic dims default to 1; set them with --dim)" : "");
    }
    printf("wrote %s\n", out);
    return EXIT_OK;
}
