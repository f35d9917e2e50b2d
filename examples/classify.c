/* classify.c - embedding crun through its public API (crun.h) only.
 *
 *   crun_example MODEL IMAGE.npy...
 *
 * Loads MODEL once, sizes and allocates the arena itself (so crun allocates no
 * activation memory), then classifies each float32 .npy image and prints the best class,
 * named by the model's "labels" metadata when it has one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crun.h"

/* Minimal .npy reader for little-endian float32 C-order arrays. */
static float *read_npy_f32(const char *path, int64_t *dims, int32_t *rank)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char pre[10];
    char header[1024];
    float *data = NULL;
    if (fread(pre, 1, 10, f) == 10 && !memcmp(pre, "\x93NUMPY", 6) && pre[6] == 1) {
        size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        if (hlen < sizeof header && fread(header, 1, hlen, f) == hlen) {
            header[hlen] = 0;
            const char *shape = strstr(header, "'shape': (");
            if (strstr(header, "'<f4'") && shape) {
                int64_t n = 1;
                *rank = 0;
                for (const char *p = shape + 10; *p && *p != ')' && *rank < 8;) {
                    char *end;
                    long long v = strtoll(p, &end, 10);
                    if (end == p)
                        break;
                    dims[(*rank)++] = v;
                    n *= v;
                    p = end + strspn(end, ", ");
                }
                data = malloc((size_t)n * sizeof *data);
                if (data && fread(data, sizeof *data, (size_t)n, f) != (size_t)n) {
                    free(data);
                    data = NULL;
                }
            }
        }
    }
    fclose(f);
    return data;
}

static void label_of(const char *labels, int64_t k, char *out, size_t size)
{
    snprintf(out, size, "class %lld", (long long)k);
    for (int64_t i = 0; labels && i < k; i++) {
        labels = strchr(labels, '\n');
        labels = labels ? labels + 1 : NULL;
    }
    if (labels && *labels)
        snprintf(out, size, "%.*s", (int)strcspn(labels, "\n"), labels);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE.npy...\n", argv[0]);
        return 2;
    }
    crun_model *model = NULL;
    if (crun_model_load_file(argv[1], &model) != CRUN_OK) {
        fprintf(stderr, "error: %s\n", crun_last_error());
        return 2;
    }
    crun_session_options opts;
    crun_session_options_init(&opts);
    size_t arena_bytes = 0;
    if (crun_model_arena_bytes(model, &opts, &arena_bytes) != CRUN_OK) {
        fprintf(stderr, "error: %s\n", crun_last_error());
        crun_model_free(model);
        return 2;
    }
    /* The caller owns the arena: 64-byte aligned, alive until the session is freed. */
    size_t alloc = (arena_bytes + 63) / 64 * 64;
    opts.arena = aligned_alloc(64, alloc ? alloc : 64);
    opts.arena_bytes = alloc;
    crun_session *session = NULL;
    if (!opts.arena || crun_session_create(model, &opts, &session) != CRUN_OK) {
        fprintf(stderr, "error: %s\n", opts.arena ? crun_last_error() : "out of memory");
        free(opts.arena);
        crun_model_free(model);
        return 2;
    }
    printf("arena: %zu bytes, owned by the caller\n", arena_bytes);
    const char *labels = crun_model_metadata(model, "labels");
    int status = 0;
    for (int i = 2; i < argc && status == 0; i++) {
        int64_t dims[8];
        int32_t rank = 0;
        float *pixels = read_npy_f32(argv[i], dims, &rank);
        if (!pixels) {
            fprintf(stderr, "error: %s: not a float32 .npy file\n", argv[i]);
            status = 2;
            break;
        }
        if (crun_session_set_input(session, 0, CRUN_DTYPE_FLOAT, rank, dims, pixels) != CRUN_OK ||
            crun_session_run(session) != CRUN_OK) {
            fprintf(stderr, "error: %s\n", crun_last_error());
            status = 1;
        } else {
            crun_tensor out;
            crun_session_get_output(session, 0, &out);
            const float *scores = out.data;
            int64_t n = (int64_t)(out.size_bytes / sizeof(float)), best = 0;
            for (int64_t k = 1; k < n; k++)
                if (scores[k] > scores[best])
                    best = k;
            char name[128];
            label_of(labels, best, name, sizeof name);
            printf("%s: %s (%.4f)\n", argv[i], name, scores[best]);
        }
        free(pixels);
    }
    crun_session_free(session);
    free(opts.arena);
    crun_model_free(model);
    return status;
}
