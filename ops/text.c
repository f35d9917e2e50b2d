/* text.c - ops on text: StringNormalizer, and TfIdfVectorizer (n-gram counts of integer
 * or string tokens). String tensors hold owned C strings (runtime/sequence.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/sequence.h"

/* ================= StringNormalizer ================= */

typedef struct NormParams {
    int case_change; /* 0 none, 1 lower, 2 upper */
    int64_t case_sensitive;
} NormParams;

static crun_status parse_normalizer(Node *n, Diag *d)
{
    NormParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    const char *action = "NONE";
    crun_status st = attr_get_string(n, "case_change_action", "NONE", &action, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "is_case_sensitive", 0, &p->case_sensitive, d);
    if (st != CRUN_OK)
        return st;
    if (!strcmp(action, "LOWER"))
        p->case_change = 1;
    else if (!strcmp(action, "UPPER"))
        p->case_change = 2;
    else if (strcmp(action, "NONE"))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "case_change_action '%s' is not valid", action);
    const Attr *sw = node_attr(n, "stopwords");
    if (sw && sw->type != ATTR_STRINGS)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'stopwords' must be a list of strings");
    return CRUN_OK;
}

static bool same_text(const char *a, const char *b, bool case_sensitive)
{
    if (case_sensitive)
        return strcmp(a, b) == 0;
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

static bool is_stopword(const Node *n, const NormParams *p, const char *s)
{
    const Attr *sw = node_attr(n, "stopwords");
    for (int i = 0; sw && i < sw->n; i++)
        if (same_text(s, sw->strings[i], p->case_sensitive))
            return true;
    return false;
}

static int64_t kept_count(const Node *n, const NormParams *p, const Tensor *x)
{
    int64_t kept = 0;
    for (int64_t i = 0; i < tensor_numel(x); i++)
        kept += !is_stopword(n, p, ((char *const *)x->data)[i]);
    return kept;
}

static crun_status normalizer_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->dtype == CRUN_DTYPE_STRING, "input must be a string tensor");
    NODE_CHECK(c, x->rank == 1 || (x->rank == 2 && x->dims[0] == 1), "input must be [C] or [1, C]");
    if (!x->data) {
        c->needs_data = true;
        return CRUN_OK;
    }
    /* All elements dropped: one empty string, [1] or [1, 1]. */
    int64_t kept = CRUN_MAX(kept_count(c->node, c->params, x), (int64_t)1);
    int64_t dims[2] = {1, kept};
    out_set(c->out[0], CRUN_DTYPE_STRING, x->rank, x->rank == 1 ? dims + 1 : dims);
    return CRUN_OK;
}

static crun_status normalizer_run(KernelCtx *k)
{
    const NormParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    int64_t j = 0;
    for (int64_t i = 0; i < tensor_numel(x); i++) {
        const char *s = ((char *const *)x->data)[i];
        if (is_stopword(k->node, p, s))
            continue;
        size_t len = strlen(s);
        if (tensor_set_string(y, j, s, len) != CRUN_OK)
            return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        char *t = ((char **)y->data)[j++];
        for (size_t c = 0; c < len && p->case_change; c++)
            t[c] = (char)(p->case_change == 1 ? tolower((unsigned char)t[c]) : toupper((unsigned char)t[c]));
    }
    if (j == 0 && tensor_set_string(y, 0, "", 0) != CRUN_OK)
        return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    return CRUN_OK;
}

static const KernelVariant normalizer_kernels[] = {
    {"string_normalizer", ISA_SCALAR, NULL, NULL, normalizer_run, NULL}, {0}};
const OpDesc op_StringNormalizer = {"", "StringNormalizer", 1, 1, 1, 1, 0, parse_normalizer, normalizer_infer, NULL,
                                    normalizer_kernels};

/* ================= TfIdfVectorizer ================= */

enum { MODE_TF, MODE_IDF, MODE_TFIDF };

typedef struct TfIdfParams {
    int mode;
    int64_t min_gram, max_gram, max_skip;
    int64_t out_size;        /* max(ngram_indexes) + 1 */
    const Attr *counts, *indexes, *pool_ints, *pool_strings, *weights;
} TfIdfParams;

static crun_status parse_tfidf(Node *n, Diag *d)
{
    TfIdfParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    const char *mode = "TF";
    crun_status st = attr_get_string(n, "mode", "TF", &mode, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "min_gram_length", 1, &p->min_gram, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "max_gram_length", 1, &p->max_gram, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "max_skip_count", 0, &p->max_skip, d);
    if (st != CRUN_OK)
        return st;
    p->mode = !strcmp(mode, "IDF") ? MODE_IDF : !strcmp(mode, "TFIDF") ? MODE_TFIDF : MODE_TF;
    p->counts = node_attr(n, "ngram_counts");
    p->indexes = node_attr(n, "ngram_indexes");
    p->pool_ints = node_attr(n, "pool_int64s");
    p->pool_strings = node_attr(n, "pool_strings");
    p->weights = node_attr(n, "weights");
    const Attr *pool = p->pool_ints ? p->pool_ints : p->pool_strings;
    if (!p->counts || !p->indexes || !pool || (p->pool_ints && p->pool_strings))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "needs ngram_counts, ngram_indexes and one pool");
    if (p->min_gram < 1 || p->max_gram < p->min_gram || p->max_skip < 0 || p->counts->n < p->max_gram)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "gram lengths, skips or ngram_counts are not valid");
    if (p->weights && p->weights->n != p->indexes->n)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'weights' and 'ngram_indexes' differ in length");
    for (int i = 0; i < p->indexes->n; i++) {
        if (p->indexes->ints[i] < 0 || p->indexes->ints[i] > (1 << 24))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "ngram_indexes[%d] is out of range", i);
        p->out_size = CRUN_MAX(p->out_size, p->indexes->ints[i] + 1);
    }
    /* Pool segment k holds the (k+1)-grams: from counts[k] up to counts[k+1] (in n-grams). */
    int64_t prev = 0;
    for (int k = 0; k < p->counts->n; k++) {
        int64_t c = p->counts->ints[k];
        if (c < prev || c > pool->n)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "ngram_counts are not valid");
        prev = c;
    }
    return CRUN_OK;
}

static crun_status tfidf_infer(InferCtx *c)
{
    const TfIdfParams *p = c->params;
    const Tensor *x = c->in[0];
    bool strings = x->dtype == CRUN_DTYPE_STRING;
    NODE_CHECK(c, strings ? p->pool_strings != NULL : (p->pool_ints && dtype_is_int(x->dtype)),
               "input type %s does not match the pool", dtype_name(x->dtype));
    NODE_CHECK(c, x->rank == 1 || x->rank == 2, "input must be 1-D or 2-D");
    int64_t dims[2] = {x->dims[0], p->out_size};
    out_set(c->out[0], CRUN_DTYPE_FLOAT, x->rank, x->rank == 1 ? dims + 1 : dims);
    return CRUN_OK;
}

/* Whether token xi of the input equals pool element pool_pos. */
static bool token_eq(const TfIdfParams *p, const Tensor *x, int64_t xi, int64_t pool_pos)
{
    if (p->pool_strings)
        return strcmp(((char *const *)x->data)[xi], p->pool_strings->strings[pool_pos]) == 0;
    return tensor_get_int(x, xi) == p->pool_ints->ints[pool_pos];
}

/* Index (in the pool's n-gram list) of the n-gram of length n starting at x[start] with
 * stride, or -1. Linear search per segment: pools are small. */
static int64_t find_ngram(const TfIdfParams *p, const Tensor *x, int64_t start, int64_t stride, int64_t n)
{
    int64_t seg_begin = p->counts->ints[n - 1];
    int64_t pool_len = p->pool_ints ? p->pool_ints->n : p->pool_strings->n;
    int64_t seg_end = n < p->counts->n ? p->counts->ints[n] : pool_len;
    /* ngram_counts are element offsets into the pool; n-grams are numbered across all
     * segments, as ngram_indexes and weights are. */
    int64_t first_gram = 0;
    for (int64_t k = 0; k < n - 1; k++) {
        int64_t b = p->counts->ints[k], e = k + 1 < p->counts->n ? p->counts->ints[k + 1] : pool_len;
        first_gram += (e - b) / (k + 1);
    }
    for (int64_t pos = seg_begin, g = 0; pos + n <= seg_end; pos += n, g++) {
        bool match = true;
        for (int64_t j = 0; j < n && match; j++)
            match = token_eq(p, x, start + j * stride, pos + j);
        if (match)
            return first_gram + g;
    }
    return -1;
}

static crun_status tfidf_run(KernelCtx *k)
{
    const TfIdfParams *p = k->params;
    const Tensor *x = k->in[0];
    float *y = k->out[0]->data;
    int64_t rows = x->rank == 2 ? x->dims[0] : 1, cols = x->dims[x->rank - 1];
    memset(y, 0, (size_t)(rows * p->out_size) * sizeof *y);
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * p->out_size;
        for (int64_t start = 0; start < cols; start++)
            for (int64_t n = p->min_gram; n <= p->max_gram; n++)
                /* A 1-gram is the same whatever the skip: count it once. */
                for (int64_t skip = 0; skip <= (n == 1 ? 0 : p->max_skip); skip++) {
                    int64_t stride = skip + 1;
                    if (start + (n - 1) * stride >= cols)
                        break;
                    int64_t g = find_ngram(p, x, r * cols + start, stride, n);
                    if (g >= 0 && g < p->indexes->n)
                        yr[p->indexes->ints[g]] += 1.0f;
                }
        for (int64_t i = 0; i < p->indexes->n; i++) {
            float *v = &yr[p->indexes->ints[i]];
            float w = p->weights ? p->weights->floats[i] : 1.0f;
            if (p->mode == MODE_IDF)
                *v = *v > 0 ? w : 0;
            else if (p->mode == MODE_TFIDF)
                *v *= w;
        }
    }
    return CRUN_OK;
}

static const KernelVariant tfidf_kernels[] = {{"tfidf_vectorizer", ISA_SCALAR, NULL, NULL, tfidf_run, NULL}, {0}};
const OpDesc op_TfIdfVectorizer = {"", "TfIdfVectorizer", 1, 1, 1, 1, 0, parse_tfidf, tfidf_infer, NULL,
                                   tfidf_kernels};
