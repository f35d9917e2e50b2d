/* cli_convert.c - `crun convert --fp16 MODEL -o OUT`: weights stored as float16. */
#include <string.h>

#include "tools/cli.h"

static const char usage[] =
    "usage: crun convert --fp16 MODEL -o OUT.onnx\n"
    "Stores every float32 weight of MODEL (initializers of 16 or more values) as float16, each\n"
    "followed by a Cast back to float32: about half the file; other ops and types unchanged.\n";

int cmd_convert(int argc, char **argv)
{
    const char *model = NULL, *out = NULL;
    bool fp16 = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--fp16"))
            fp16 = true;
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (argv[i][0] != '-' && !model)
            model = argv[i];
        else
            return cli_fail(EXIT_BAD_INPUT, "unexpected argument '%s' (see crun convert --help)", argv[i]);
    }
    if (!fp16)
        return cli_fail(EXIT_BAD_INPUT, "convert needs a target format: --fp16 (see crun convert --help)");
    if (!model || !out)
        return cli_fail(EXIT_BAD_INPUT, "convert needs a MODEL and -o OUT (see crun convert --help)");
    crun_status st = crun_convert_fp16_file(model, out);
    if (st != CRUN_OK)
        return cli_fail(cli_exit_code(st, false), "%s", crun_last_error());
    printf("wrote %s\n", out);
    return EXIT_OK;
}
