/* fuzz_spec.c - libFuzzer target for the trainer's model spec: the bytes as spec text;
 * a spec that parses is built for a batch of 2, run forward and backward, prepared for
 * QAT and exported, all under a memory cap (so allocation failures are exercised too). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the net's activations are small enough to run here. */
static bool small(const Net *net)
{
    int64_t total = 0;
    for (int i = 0; i < net->n; i++)
        total += tshape_size(net->layers[i].out);
    return total <= (1 << 20);
}

static void exercise(Net *net)
{
    Diag d = {0};
    if (net_build(net, 2, 1, 1, &d) != CRUN_OK)
        return;
    int64_t in = 2 * tshape_size(net->layers[0].out), out = 2 * tshape_size(net->layers[net->n - 1].out);
    float *x = calloc((size_t)in + 1, sizeof *x), *g = calloc((size_t)out + 1, sizeof *g);
    if (x && g) {
        for (int64_t i = 0; i < in; i++)
            x[i] = (float)(i % 7) - 3.0f;
        for (int64_t i = 0; i < out; i++)
            g[i] = 0.5f;
        net->training = true;
        net_forward(net, x, 2);
        net_backward(net, g);
        net->training = false;
        qat_fold(net, true);
        if (qat_enable(net, &d) == CRUN_OK) {
            net->calibrating = true;
            net_forward(net, x, 2);
            net->calibrating = false;
            uint8_t *bytes = NULL;
            size_t n = 0;
            if (net_onnx_bytes(net, &bytes, &n, &d) == CRUN_OK)
                free(bytes);
        }
    }
    free(x), free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crun_set_memory_limit((size_t)256 << 20);
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    Net net;
    Diag d = {0};
    if (net_parse(text, &net, &d) == CRUN_OK) {
        if (small(&net))
            exercise(&net);
        net_free(&net);
    }
    free(text);
    return 0;
}
