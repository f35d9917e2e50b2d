/* crun_file.h - the compiled model file (.crun): a model after the passes, planned for
 * fixed input shapes, with every weight and every packed weight block stored 64-byte
 * aligned so that a mapping of the file serves them in place.
 *
 * Layout (little-endian, offsets from the start of the file):
 *   header   CRUNFILE_HEADER_BYTES: magic, format, build, arch, ISA, section offsets and
 *            sizes, a checksum of each section, the plan's arena and workspace figures
 *   tables   the graph, model facts, kernel names, pack-block index and arena layout, as
 *            a stream of length-prefixed records (see crun_write.c)
 *   blobs    constant data and packed blocks, each at a multiple of 64 bytes
 *
 * A file is refused unless its format, crun build and architecture are this build's and
 * the CPU has its ISA: its packed layouts belong to one build's kernels. */
#ifndef CRUN_LOADERS_CRUN_FILE_H
#define CRUN_LOADERS_CRUN_FILE_H

#include "runtime/plan.h"

#define CRUNFILE_MAGIC "CRUNPLAN"
#define CRUNFILE_FORMAT 1
#define CRUNFILE_HEADER_BYTES 256
#define CRUNFILE_BLOB_ALIGN 64

/* Fuzz builds read files whose checksums are wrong (mutations keep them so), and saved
 * inputs of earlier builds, so that the decoding behind them gets fuzzed. */
#ifdef CRUN_FUZZING
#define CRUNFILE_FUZZING 1
#else
#define CRUNFILE_FUZZING 0
#endif

struct crun_model;

/* What the header says, decoded. */
typedef struct CrunFileHeader {
    uint32_t format;
    char build[48];  /* crun version and source revision that wrote it */
    char arch[16];
    Isa isa;         /* the ISA its kernels were chosen under */
    int32_t threads; /* the plan's thread count */
    uint64_t file_bytes;
    uint64_t tables_offset, tables_bytes, tables_sum;
    uint64_t blobs_offset, blobs_bytes, blobs_sum;
    uint64_t arena_bytes;     /* the planned arena for the compiled shapes and threads */
    uint64_t workspace_bytes; /* one buffer holding model, session and arena (static mode) */
} CrunFileHeader;

/* Whether bytes start like a compiled model. */
bool crunfile_is(const void *data, size_t size);

/* 64-bit checksum of size bytes (fast: a load checks every byte of the file). Four
 * independent multiply-rotate lanes over 32-byte blocks, folded at the end. */
uint64_t crunfile_checksum(const void *data, size_t size);
/* The same checksum fed in pieces: checksum_blocks takes whole 32-byte blocks (n a
 * multiple of 32), checksum_finish the last bytes (any n). */
typedef struct Checksum {
    uint64_t lane[4];
    uint64_t len;
} Checksum;
void checksum_init(Checksum *c);
void checksum_blocks(Checksum *c, const void *data, size_t n);
uint64_t checksum_finish(Checksum *c, const void *tail, size_t n);

/* This build's identity as written into files. Static storage. */
const char *crunfile_build_id(void);
const char *crunfile_arch(void);

/* Decodes and checks the header (not the sections' checksums). */
crun_status crunfile_read_header(const void *data, size_t size, CrunFileHeader *h, Diag *d);

/* Writes m (its graph as the passes left it) planned as p, under isa, with the model's
 * pack blocks, to path. workspace_bytes goes into the header as is. */
crun_status crunfile_write(const struct crun_model *m, const Plan *p, Isa isa, uint64_t workspace_bytes,
                           const char *path, Diag *d);

/* Rewrites the header of the file at path with workspace_bytes (and its checksum). */
crun_status crunfile_set_workspace(const char *path, uint64_t workspace_bytes, Diag *d);

/* Checks the weights' checksum (a pass over the whole blob section). */
crun_status crunfile_verify_weights(const void *data, size_t size, Diag *d);

/* Fills m from a compiled image. The header and tables are checked (checksums, then every
 * record as it is decoded); the weights are not read (see crunfile_verify_weights). data must stay valid and unchanged for m's life (weights
 * and packed blocks are used where they lie); it must be 64-byte aligned. */
crun_status crunfile_load(const void *data, size_t size, struct crun_model *m, Diag *d);

#endif
