/* fuzz_model.c - libFuzzer target: model bytes -> load -> plan (with folding of constants,
 * so kernels run on fuzzed data too). Any crash, leak, undefined behaviour or allocation
 * past the 256 MiB cap is a bug. */
#include <stdint.h>

#include "crun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crun_set_memory_limit((size_t)256 << 20);
    crun_model *m = NULL;
    if (crun_model_load_memory(data, size, &m) != CRUN_OK)
        return 0;
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = 1;
    crun_session *s = NULL;
    if (crun_session_create(m, &o, &s) == CRUN_OK)
        crun_session_plan(s);
    crun_session_free(s);
    crun_model_free(m);
    return 0;
}
