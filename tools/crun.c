/* crun.c - the command line: `crun MODEL`, `crun info`, `crun bench`, `crun profile`, `crun test`,
 * `crun quantize`, `crun convert`, `crun compile`, `crun train`. */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static const char usage[] =
    "crun %s - run ONNX models\n"
    "usage:\n"
    "  crun MODEL [options]        run once and print the outputs (crun MODEL --help)\n"
    "  crun info MODEL [--nodes]   inputs, outputs, ops, parameters, FLOPs, memory plan\n"
    "  crun bench MODEL [options]  latency, load time, memory (--json for machines)\n"
    "  crun profile MODEL [options] time per step, slowest first (--trace OUT.json)\n"
    "  crun test DIR...            run ONNX backend-test folders and compare outputs\n"
    "  crun quantize MODEL -o OUT  post-training int8 quantization to a QDQ model\n"
    "  crun convert --fp16 MODEL -o OUT  weights stored as float16 (half the file)\n"
    "  crun compile MODEL -o OUT.crun  plan once: a file that loads by mapping, weights packed\n"
    "  crun ops MODEL...           the ops the models need (input of a selective build)\n"
    "  crun train SPEC [options]   train (with QAT) and export ONNX (crun train --help)\n"
    "exit codes: 0 success, 1 failure while running, 2 usage error or bad input\n";

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        printf(usage, crun_version());
        return argc < 2 ? EXIT_BAD_INPUT : EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("crun %s\n", crun_version());
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(argv[1], "profile"))
        return cmd_profile(argc - 1, argv + 1);
    if (!strcmp(argv[1], "compile"))
        return cmd_compile(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ops"))
        return cmd_ops(argc - 1, argv + 1);
#ifndef CRUN_SELECTIVE /* a selective build is for deploying: run, inspect, benchmark, compile */
    if (!strcmp(argv[1], "convert"))
        return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(argv[1], "quantize"))
        return cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train"))
        return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "test"))
        return cmd_test(argc - 1, argv + 1);
#else
    static const char *const full_only[] = {"convert", "quantize", "train", "test"};
    for (size_t i = 0; i < sizeof full_only / sizeof *full_only; i++)
        if (!strcmp(argv[1], full_only[i]))
            return cli_fail(EXIT_BAD_INPUT, "crun %s is not in this selective build (its ops: %s)", argv[1],
                            CRUN_SELECTIVE);
#endif
    return cmd_run(argc, argv);
}
