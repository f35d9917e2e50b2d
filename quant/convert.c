/* convert.c - `crun convert --fp16`: the model's weights stored as float16 (the file about
 * half the size); crun widens them back to float32 once, at load. */
#include <stdlib.h>

#include "crun.h"
#include "loaders/onnx_fp16.h"
#include "loaders/tensor_file.h"

crun_status crun_convert_fp16_file(const char *model_path, const char *out_path)
{
    if (!model_path || !out_path)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_convert_fp16_file: a path is NULL");
    void *bytes = NULL;
    size_t size = 0;
    Diag d = {0};
    int n = 0;
    crun_status st = file_read_all(model_path, &bytes, &size, &d);
    if (st == CRUN_OK) {
        st = fp16_convert(bytes, size, out_path, &n, &d);
        if (st == CRUN_ERR_INVALID_MODEL)
            diag_prefix(&d, "%s", model_path);
    }
    free(bytes);
    if (st != CRUN_OK)
        diag_publish(&d);
    return st;
}
