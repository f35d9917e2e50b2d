/* cli.h - shared pieces of the crun command line: options common to run, info and
 * bench, loading and generating inputs, exit codes. */
#ifndef CRUN_TOOLS_CLI_H
#define CRUN_TOOLS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "crun.h"
#include "runtime/core.h"

/* Exit codes (a stable contract). */
enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2 };

#define CLI_MAX_ITEMS 64

typedef struct CliInput {
    const char *name, *path;
} CliInput;

typedef struct CliOptions {
    const char *model;
    int threads;
    CliInput inputs[CLI_MAX_ITEMS];
    int n_inputs;
    crun_dim_value dims[CLI_MAX_ITEMS];
    int n_dims;
    const char *output_dir;
    const char *labels;
    int top;
    bool nodes;
    bool json;
    int warmup, runs;
    const char *isa;
    crun_backend backend; /* --backend */
    const char *trace; /* profile: trace-event JSON to write */
    const char *plan_svg; /* info: picture of the memory plan to write */
} CliOptions;

/* Parses the options shared by run/info/bench from argv[first..]. Unknown options and
 * a missing model give a message and EXIT_BAD_INPUT; returns -1 when all is well. */
int cli_parse(int argc, char **argv, int first, CliOptions *o, const char *usage);

/* Parses a --dim value SYM=VALUE (at least min) into out, pointing into arg (which it
 * splits in place); returns -1 or an exit code after the message. */
int cli_parse_dim(char *arg, long long min, crun_dim_value *out);

/* Parses a --backend value (native, xnnpack, auto); returns -1 or an exit code after the
 * message. */
int cli_parse_backend(const char *name, crun_backend *out);

/* Parses a byte count with an optional K/M/G suffix. */
bool cli_parse_size(const char *s, size_t *out);

/* Prints "crun: error: msg" to stderr and returns code. */
int cli_fail(int code, const char *fmt, ...) CRUN_PRINTF(2, 3);
/* Exit code for a failed API status while setting up (2) or running (1). */
int cli_exit_code(crun_status st, bool running);

/* A session with every input bound (files or generated). Owns the loaded data. */
typedef struct CliSession {
    crun_model *model;
    crun_session *session;
    Tensor *data; /* one per model input */
    double load_ms, plan_ms;
} CliSession;

/* A compiled model runs with the thread count it was planned for unless --threads says
 * otherwise (its ISA it keeps by itself). Returns the thread count to use. */
int cli_compiled_threads(const crun_model *m, const CliOptions *o);

/* Loads the model, creates the session and binds inputs; returns -1 or an exit code. */
int cli_session_open(const CliOptions *o, CliSession *cs);
void cli_session_close(CliSession *cs);

/* Formats a tensor's first values. */
void cli_print_values(FILE *f, const crun_tensor *t, int max_values);
/* Writes "DIR/NAME.npy", NAME with characters outside [A-Za-z0-9_] replaced by '_'. */
int cli_write_output(const char *dir, const crun_tensor *t);
/* Seconds from a monotonic clock. */
double cli_now(void);

/* Writes the session's memory plan as an SVG picture; -1 when written, else an exit code. */
int write_plan_svg(const crun_session *s, const char *model, const char *path);

int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_ops(int argc, char **argv);
/* Writes DIR/NAME.c and DIR/NAME.h from the compiled model at crun_path (compile --emit-c);
 * returns -1 or an exit code. */
int emit_c(const char *crun_path, const char *dir, const char *name);
int cmd_bench(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_train(int argc, char **argv);

/* Where Debian's dataset-fashion-mnist puts the data. */
#define TRAIN_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

#endif
