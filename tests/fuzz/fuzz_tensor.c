/* fuzz_tensor.c - libFuzzer target for the tensor file readers: the first byte picks the
 * format (even: .npy, odd: ONNX TensorProto .pb), the rest is the file. */
#include <stdint.h>
#include <stdlib.h>

#include "loaders/tensor_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    crun_set_memory_limit((size_t)256 << 20);
    Tensor t;
    Diag d = {0};
    char *name = NULL;
    crun_status st = data[0] % 2 ? pb_tensor_parse(data + 1, size - 1, &t, &name, &d)
                                 : npy_parse(data + 1, size - 1, &t, &d);
    if (st == CRUN_OK) {
        tensor_file_free(&t);
        free(name);
    }
    return 0;
}
