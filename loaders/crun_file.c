/* crun_file.c - what the .crun writer and reader share: the checksum, this build's
 * identity and the header's decoding. */
#include "loaders/crun_file.h"

#include <string.h>

#ifndef CRUN_SOURCE_REV
#define CRUN_SOURCE_REV "unknown"
#endif

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

void checksum_init(Checksum *c)
{
    c->lane[0] = P1 + P2;
    c->lane[1] = P2;
    c->lane[2] = 0;
    c->lane[3] = 0 - P1;
    c->len = 0;
}

void checksum_blocks(Checksum *c, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t a = c->lane[0], b = c->lane[1], x = c->lane[2], y = c->lane[3];
    for (size_t i = 0; i + 32 <= n; i += 32) {
        a = rotl(a + load64(p + i) * P2, 31) * P1;
        b = rotl(b + load64(p + i + 8) * P2, 31) * P1;
        x = rotl(x + load64(p + i + 16) * P2, 31) * P1;
        y = rotl(y + load64(p + i + 24) * P2, 31) * P1;
    }
    c->lane[0] = a;
    c->lane[1] = b;
    c->lane[2] = x;
    c->lane[3] = y;
    c->len += n;
}

uint64_t checksum_finish(Checksum *c, const void *tail, size_t n)
{
    uint8_t last[32] = {0};
    size_t whole = n / 32 * 32;
    checksum_blocks(c, tail, whole);
    if (n > whole) {
        memcpy(last, (const uint8_t *)tail + whole, n - whole);
        checksum_blocks(c, last, 32);
        c->len -= 32 - (n - whole);
    }
    uint64_t h = c->len * P1;
    for (int i = 0; i < 4; i++)
        h = rotl(h ^ (c->lane[i] * P2), 27) * P1 + P2;
    h ^= h >> 33;
    h *= P2;
    return h ^ (h >> 29);
}

uint64_t crunfile_checksum(const void *data, size_t size)
{
    Checksum c;
    checksum_init(&c);
    return checksum_finish(&c, data, size);
}

const char *crunfile_build_id(void) { return CRUN_VERSION_STRING "+" CRUN_SOURCE_REV; }

const char *crunfile_arch(void)
{
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#elif defined(__arm__)
    return "arm";
#else
    return "other";
#endif
}

bool crunfile_is(const void *data, size_t size) { return size >= 8 && memcmp(data, CRUNFILE_MAGIC, 8) == 0; }

static void copy_field(char *dst, size_t n, const uint8_t *src)
{
    memcpy(dst, src, n);
    dst[n - 1] = 0;
}

static bool section_ok(uint64_t offset, uint64_t bytes, uint64_t file_bytes)
{
    return offset <= file_bytes && bytes <= file_bytes - offset;
}

crun_status crunfile_read_header(const void *data, size_t size, CrunFileHeader *h, Diag *d)
{
    const uint8_t *p = data;
    memset(h, 0, sizeof *h);
    if (!crunfile_is(data, size))
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "not a compiled crun model");
    if (size < CRUNFILE_HEADER_BYTES)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model is truncated (%zu bytes, the header alone is %d)",
                         size, CRUNFILE_HEADER_BYTES);
    uint64_t sum;
    memcpy(&sum, p + CRUNFILE_HEADER_BYTES - 8, 8);
    if (sum != crunfile_checksum(p, CRUNFILE_HEADER_BYTES - 8) && !CRUNFILE_FUZZING)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model header is corrupt (checksum mismatch)");
    uint32_t u32[4];
    uint64_t u64[9];
    memcpy(u32, p + 8, sizeof u32);
    memcpy(u64, p + 24, sizeof u64);
    h->format = u32[0];
    h->isa = (Isa)u32[2];
    h->threads = (int32_t)u32[3];
    h->file_bytes = u64[0];
    h->tables_offset = u64[1];
    h->tables_bytes = u64[2];
    h->tables_sum = u64[3];
    h->blobs_offset = u64[4];
    h->blobs_bytes = u64[5];
    h->blobs_sum = u64[6];
    h->arena_bytes = u64[7];
    h->workspace_bytes = u64[8];
    copy_field(h->build, sizeof h->build, p + 96);
    copy_field(h->arch, sizeof h->arch, p + 144);
    if (h->format != CRUNFILE_FORMAT)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model has format %u, this crun reads format %d: compile it again",
                         h->format, CRUNFILE_FORMAT);
    if (strcmp(h->build, crunfile_build_id()) != 0 && !CRUNFILE_FUZZING)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL,
                         "compiled by crun %s, this is crun %s: compile the model again with this crun", h->build,
                         crunfile_build_id());
    if (strcmp(h->arch, crunfile_arch()) != 0)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled for %s, this is %s: compile it on (or for) this machine",
                         h->arch, crunfile_arch());
    if (h->isa >= ISA_COUNT || h->threads < 1)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model header is corrupt");
    if (h->file_bytes != size)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model is %s (%zu bytes, the header says %llu)",
                         size < h->file_bytes ? "truncated" : "too long", size, (unsigned long long)h->file_bytes);
    if (!section_ok(h->tables_offset, h->tables_bytes, size) || !section_ok(h->blobs_offset, h->blobs_bytes, size) ||
        h->tables_offset < CRUNFILE_HEADER_BYTES || h->blobs_offset % CRUNFILE_BLOB_ALIGN)
        return diag_fail(d, CRUN_ERR_INVALID_MODEL, "compiled model header is corrupt (sections out of range)");
    if (!isa_allowed(h->isa))
        return diag_fail(d, CRUN_ERR_UNSUPPORTED,
                         "compiled for %s, which this CPU lacks (or CRUN_ISA / --isa forbids): compile it with --isa %s",
                         isa_name(h->isa), isa_name(isa_best()));
    return CRUN_OK;
}
