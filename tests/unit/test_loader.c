/* test_loader.c - every dtype (raw and typed fields), Constant forms, external data,
 * and malformed models: each gives an error status with a one-line message, never a crash. */
#include <stdlib.h>
#include <unistd.h>

#include "quant/fp16.h"
#include "testutil.h"

/* A model whose only output is the initializer t. */
static crun_model *const_model(OnnxBuilder *b, Onnx__TensorProto *t)
{
    ob_initializer(b, t);
    ob_output(b, t->name);
    return ob_load(b);
}

static bool output_bytes_equal(crun_model *m, const void *want, size_t bytes, crun_dtype dtype, const int64_t *dims,
                               int rank)
{
    crun_session *s = run_inputs(m, 1, 0, NULL);
    crun_tensor t;
    bool ok = s && crun_session_get_output(s, 0, &t) == CRUN_OK && t.dtype == dtype && t.rank == rank &&
              t.size_bytes == bytes && memcmp(t.data, want, bytes) == 0;
    for (int k = 0; ok && k < rank; k++)
        ok = t.dims[k] == dims[k];
    crun_session_free(s);
    return ok;
}

TEST(every_dtype_through_raw_data)
{
    crun_dtype types[] = {CRUN_DTYPE_FLOAT,  CRUN_DTYPE_DOUBLE, CRUN_DTYPE_FLOAT16, CRUN_DTYPE_BFLOAT16,
                          CRUN_DTYPE_INT8,   CRUN_DTYPE_INT16,  CRUN_DTYPE_INT32,   CRUN_DTYPE_INT64,
                          CRUN_DTYPE_UINT8,  CRUN_DTYPE_UINT16, CRUN_DTYPE_UINT32,  CRUN_DTYPE_UINT64,
                          CRUN_DTYPE_BOOL};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        unsigned char data[6 * 8];
        for (int k = 0; k < 48; k++)
            data[k] = (unsigned char)(k * 37 + (int)i);
        if (types[i] == CRUN_DTYPE_BOOL)
            for (int k = 0; k < 6; k++)
                data[k] = (unsigned char)(k & 1);
        int64_t dims[2] = {2, 3};
        OnnxBuilder *b = ob_new(13);
        crun_model *m = const_model(b, ob_tensor(b, "c", types[i], 2, dims, data));
        ob_free(b);
        CHECK_MSG(m, "%s: %s", crun_dtype_name(types[i]), crun_last_error());
        bool ok = output_bytes_equal(m, data, 6 * crun_dtype_size(types[i]), types[i], dims, 2);
        crun_model_free(m);
        CHECK_MSG(ok, "%s round trip", crun_dtype_name(types[i]));
    }
}

TEST(every_dtype_through_typed_fields)
{
    int64_t dims[1] = {3};
    float f[3] = {1.5f, -2, 3};
    double dv[3] = {1.5, -2, 3};
    int32_t i32[3] = {1, 0, 3};
    int64_t i64[3] = {INT64_MIN, -2, INT64_MAX};
    uint64_t u64[3] = {1, 2, UINT64_MAX};
    int8_t w8[3] = {1, 0, 3};
    int16_t w16[3] = {1, 0, 3};
    uint8_t wb[3] = {1, 0, 1};
    uint32_t w32[3] = {1, 2, UINT32_MAX};
    struct {
        crun_dtype t;
        char field; /* f float_data, d double_data, i int32_data, l int64_data, u uint64_data */
        const void *want;
    } cases[] = {{CRUN_DTYPE_FLOAT, 'f', f},      {CRUN_DTYPE_DOUBLE, 'd', dv},    {CRUN_DTYPE_INT32, 'i', i32},
                 {CRUN_DTYPE_INT8, 'i', w8},      {CRUN_DTYPE_UINT8, 'i', w8},     {CRUN_DTYPE_INT16, 'i', w16},
                 {CRUN_DTYPE_UINT16, 'i', w16},   {CRUN_DTYPE_BOOL, 'i', wb},      {CRUN_DTYPE_FLOAT16, 'i', w16},
                 {CRUN_DTYPE_BFLOAT16, 'i', w16}, {CRUN_DTYPE_INT64, 'l', i64},    {CRUN_DTYPE_UINT32, 'u', w32},
                 {CRUN_DTYPE_UINT64, 'u', u64}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        OnnxBuilder *b = ob_new(13);
        static const uint8_t zeros[24];
        Onnx__TensorProto *t = ob_tensor(b, "c", cases[i].t, 1, dims, zeros);
        t->has_raw_data = 0;
        switch (cases[i].field) {
        case 'f': t->n_float_data = 3, t->float_data = f; break;
        case 'd': t->n_double_data = 3, t->double_data = dv; break;
        case 'i': t->n_int32_data = 3, t->int32_data = i32; break;
        case 'l': t->n_int64_data = 3, t->int64_data = i64; break;
        default: t->n_uint64_data = 3, t->uint64_data = u64; break;
        }
        crun_model *m = const_model(b, t);
        ob_free(b);
        CHECK_MSG(m, "%s: %s", crun_dtype_name(cases[i].t), crun_last_error());
        bool ok = output_bytes_equal(m, cases[i].want, 3 * crun_dtype_size(cases[i].t), cases[i].t, dims, 1);
        crun_model_free(m);
        CHECK_MSG(ok, "%s from typed field '%c'", crun_dtype_name(cases[i].t), cases[i].field);
    }
}

TEST(constant_node_forms)
{
    OnnxBuilder *b = ob_new(13);
    Onnx__NodeProto *n = ob_node(b, "Constant", "", "a");
    ob_attr_float(b, n, "value_float", 2.5f);
    n = ob_node(b, "Constant", "", "b");
    int64_t ints[3] = {4, 5, 6};
    ob_attr_ints(b, n, "value_ints", ints, 3);
    ob_node(b, "Shape", "b", "c"); /* folded at load */
    ob_output(b, "a");
    ob_output(b, "b");
    ob_output(b, "c");
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK_MSG(m, "%s", crun_last_error());
    crun_session *s = run_inputs(m, 1, 0, NULL);
    CHECK(s);
    crun_tensor a, bb, c;
    CHECK_OK(crun_session_get_output(s, 0, &a));
    CHECK_OK(crun_session_get_output(s, 1, &bb));
    CHECK_OK(crun_session_get_output(s, 2, &c));
    bool ok = a.rank == 0 && ((const float *)a.data)[0] == 2.5f && bb.dtype == CRUN_DTYPE_INT64 && bb.dims[0] == 3 &&
              ((const int64_t *)bb.data)[2] == 6 && ((const int64_t *)c.data)[0] == 3;
    crun_session_free(s);
    crun_model_free(m);
    CHECK(ok);
}

/* ---- external data ---- */

static char tmpdir[64];

static void write_file(const char *name, const void *data, size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
    }
}

static Onnx__StringStringEntryProto *entry(const char *k, const char *v)
{
    static Onnx__StringStringEntryProto e[16];
    static int n;
    Onnx__StringStringEntryProto *p = &e[n++ % 16];
    onnx__string_string_entry_proto__init(p);
    p->key = (char *)k;
    p->value = (char *)v;
    return p;
}

/* Writes a model with one external float initializer of 4 values at location/offset. */
static crun_status load_external(const char *location, const char *offset, crun_model **m)
{
    OnnxBuilder *b = ob_new(13);
    int64_t dims[1] = {4};
    float zero[4] = {0};
    Onnx__TensorProto *t = ob_tensor(b, "w", CRUN_DTYPE_FLOAT, 1, dims, zero);
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    Onnx__StringStringEntryProto *entries[2] = {entry("location", location), entry("offset", offset)};
    t->external_data = entries;
    t->n_external_data = offset ? 2 : 1;
    ob_initializer(b, t);
    ob_output(b, "w");
    size_t size;
    uint8_t *buf = ob_pack(b, &size);
    write_file("model.onnx", buf, size);
    free(buf);
    ob_free(b);
    char path[256];
    snprintf(path, sizeof path, "%s/model.onnx", tmpdir);
    return crun_model_load_file(path, m);
}

TEST(external_data_inside_the_folder_only)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/crun_test_XXXXXX");
    CHECK(mkdtemp(tmpdir));
    float w[6] = {9, 9, 1, 2, 3, 4};
    write_file("weights.bin", w, sizeof w);
    crun_model *m = NULL;
    CHECK_OK(load_external("weights.bin", "8", &m));
    int64_t dims[1] = {4};
    bool ok = output_bytes_equal(m, w + 2, 16, CRUN_DTYPE_FLOAT, dims, 1);
    crun_model_free(m);
    CHECK(ok);
    CHECK_STATUS(load_external("../weights.bin", NULL, &m), CRUN_ERR_INVALID_MODEL);
    CHECK(strstr(crun_last_error(), "leaves the model's folder"));
    CHECK_STATUS(load_external("/etc/passwd", NULL, &m), CRUN_ERR_INVALID_MODEL);
    CHECK_STATUS(load_external("missing.bin", NULL, &m), CRUN_ERR_IO);
    CHECK(strstr(crun_last_error(), "missing.bin"));
    CHECK_STATUS(load_external("weights.bin", "16", &m), CRUN_ERR_INVALID_MODEL); /* 8 bytes left, 16 needed */
    CHECK_STATUS(load_external("weights.bin", "-3", &m), CRUN_ERR_INVALID_MODEL);
    /* A symlink inside the folder that points outside is refused too. */
    char link[256];
    snprintf(link, sizeof link, "%s/escape.bin", tmpdir);
    CHECK(symlink("/etc/hostname", link) == 0);
    CHECK_STATUS(load_external("escape.bin", NULL, &m), CRUN_ERR_INVALID_MODEL);
    /* From memory there is no folder: external data is refused. */
    OnnxBuilder *b = ob_new(13);
    Onnx__TensorProto *t = ob_tensor(b, "w", CRUN_DTYPE_FLOAT, 1, dims, w);
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    Onnx__StringStringEntryProto *e1[1] = {entry("location", "weights.bin")};
    t->external_data = e1;
    t->n_external_data = 1;
    m = const_model(b, t);
    ob_free(b);
    CHECK(!m && strstr(crun_last_error(), "external data"));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0);
}

/* ---- malformed models ---- */

static void expect_error(crun_model *m, crun_status want, const char *needle, const char *what)
{
    const char *msg = crun_last_error();
    if (m) {
        crun_model_free(m);
        harness_fail(__FILE__, __LINE__, "%s: loaded, expected an error", what);
        return;
    }
    if (want != CRUN_OK && !strstr(msg, needle))
        harness_fail(__FILE__, __LINE__, "%s: message '%s' does not mention '%s'", what, msg, needle);
    if (strchr(msg, '\n'))
        harness_fail(__FILE__, __LINE__, "%s: message has more than one line", what);
}

TEST(malformed_models_fail_cleanly)
{
    int64_t d2[1] = {2}, neg[1] = {-1};
    float two[2] = {1, 2};
    /* raw data shorter than the dims say */
    OnnxBuilder *b = ob_new(13);
    Onnx__TensorProto *t = ob_tensor(b, "w", CRUN_DTYPE_FLOAT, 1, d2, two);
    t->dims[0] = 3;
    expect_error(const_model(b, t), CRUN_ERR_INVALID_MODEL, "raw data", "short raw data");
    ob_free(b);
    /* negative dim */
    b = ob_new(13);
    t = ob_tensor(b, "w", CRUN_DTYPE_FLOAT, 1, d2, two);
    t->dims[0] = neg[0];
    expect_error(const_model(b, t), CRUN_ERR_INVALID_MODEL, "negative dim", "negative dim");
    ob_free(b);
    /* dims whose product overflows */
    b = ob_new(13);
    t = ob_tensor(b, "w", CRUN_DTYPE_FLOAT, 1, d2, two);
    int64_t huge[4] = {1LL << 40, 1LL << 40, 0, 0};
    t->dims = huge;
    t->n_dims = 2;
    expect_error(const_model(b, t), CRUN_ERR_INVALID_MODEL, "too large", "overflowing dims");
    ob_free(b);
    /* an input nothing defines */
    b = ob_new(13);
    ob_node(b, "Relu", "ghost", "y");
    ob_output(b, "y");
    expect_error(ob_load(b), CRUN_ERR_INVALID_MODEL, "'ghost'", "undefined input");
    ob_free(b);
    /* a value defined twice */
    b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 1, d2, NULL);
    ob_node(b, "Relu", "x", "y");
    ob_node(b, "Sigmoid", "x", "y");
    ob_output(b, "y");
    expect_error(ob_load(b), CRUN_ERR_INVALID_MODEL, "defined twice", "duplicate");
    ob_free(b);
    /* a cycle */
    b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 1, d2, NULL);
    ob_node(b, "Add", "x,c", "a");
    ob_node(b, "Relu", "a", "c");
    ob_output(b, "c");
    expect_error(ob_load(b), CRUN_ERR_INVALID_MODEL, "cycle", "cycle");
    ob_free(b);
    /* unknown ops are all named in one line */
    b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 1, d2, NULL);
    ob_node(b, "FancyOp", "x", "a");
    ob_node(b, "OtherOp", "a", "b");
    ob_node(b, "FancyOp", "b", "y");
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    expect_error(m, CRUN_ERR_UNSUPPORTED, "unsupported ops: FancyOp, OtherOp", "unknown ops");
    ob_free(b);
    /* bad attribute values */
    b = ob_new(13);
    int64_t dx[4] = {1, 1, 4, 4}, dw[4] = {1, 1, 2, 2}, strides[2] = {0, 1};
    float w[4] = {1, 1, 1, 1};
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, NULL);
    ob_init_f32(b, "w", 4, dw, w);
    ob_attr_ints(b, ob_node(b, "Conv", "x,w", "y"), "strides", strides, 2);
    ob_output(b, "y");
    expect_error(ob_load(b), CRUN_ERR_INVALID_MODEL, "strides", "zero stride");
    ob_free(b);
    /* no graph outputs */
    b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 1, d2, NULL);
    expect_error(ob_load(b), CRUN_ERR_INVALID_MODEL, "no outputs", "no outputs");
    ob_free(b);
}

TEST(garbage_and_truncated_bytes_never_crash)
{
    crun_model *m = NULL;
    CHECK_STATUS(crun_model_load_memory("not a model at all", 18, &m), CRUN_ERR_INVALID_MODEL);
    CHECK_STATUS(crun_model_load_memory("", 0, &m), CRUN_ERR_INVALID_MODEL);
    CHECK_STATUS(crun_model_load_file("/nonexistent/model.onnx", &m), CRUN_ERR_IO);
    CHECK(strstr(crun_last_error(), "/nonexistent/model.onnx"));
    /* Every prefix of a real model: an error or (at a field boundary) a valid smaller model. */
    OnnxBuilder *b = ob_new(13);
    int64_t dx[4] = {1, 2, 5, 5}, dw[4] = {3, 2, 3, 3};
    float w[54];
    fill_random(w, 54, 1, -1, 1);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, dx, NULL);
    ob_init_f32(b, "w", 4, dw, w);
    ob_node(b, "Conv", "x,w", "c");
    ob_node(b, "Relu", "c", "y");
    ob_output(b, "y");
    size_t size;
    uint8_t *buf = ob_pack(b, &size);
    ob_free(b);
    unsigned s = 3;
    for (size_t len = 0; len < size; len++) {
        crun_status st = crun_model_load_memory(buf, len, &m);
        crun_model_free(m);
        m = NULL;
        CHECK_MSG(st == CRUN_OK || strlen(crun_last_error()) > 0, "prefix %zu: no message", len);
        /* Flip a random byte too. */
        uint8_t *mut = malloc(size);
        memcpy(mut, buf, size);
        s = s * 1103515245u + 12345u;
        mut[(s >> 8) % size] ^= (uint8_t)(1u << (s % 8));
        crun_model_load_memory(mut, size, &m);
        crun_model_free(m);
        m = NULL;
        free(mut);
    }
    free(buf);
}

/* y = LeakyRelu(a + b, alpha) as a model-local function, called twice with different
 * alphas: each call expands with its own names and attribute. */
TEST(model_local_functions_expand)
{
    OnnxBuilder *b = ob_new(13);
    int64_t d[1] = {3};
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 1, d, NULL);
    ob_input(b, "z", CRUN_DTYPE_FLOAT, 1, d, NULL);
    Onnx__NodeProto *c1 = ob_node(b, "AddLeaky", "x,z", "h");
    Onnx__NodeProto *c2 = ob_node(b, "AddLeaky", "h,z", "y");
    c1->domain = c2->domain = "my.funcs";
    ob_attr_float(b, c1, "slope", 0.5f);
    ob_attr_float(b, c2, "slope", 0.25f);
    ob_output(b, "y");
    /* The function body: t = Add(a, b); out = LeakyRelu(t, alpha = @slope). */
    Onnx__NodeProto add = ONNX__NODE_PROTO__INIT, leaky = ONNX__NODE_PROTO__INIT;
    char *add_in[2] = {"a", "b"}, *add_out[1] = {"t"}, *lk_in[1] = {"t"}, *lk_out[1] = {"out"};
    add.op_type = "Add", add.domain = "", add.input = add_in, add.n_input = 2, add.output = add_out, add.n_output = 1;
    leaky.op_type = "LeakyRelu", leaky.domain = "", leaky.input = lk_in, leaky.n_input = 1, leaky.output = lk_out;
    leaky.n_output = 1;
    Onnx__AttributeProto ref = ONNX__ATTRIBUTE_PROTO__INIT;
    ref.name = "alpha";
    ref.ref_attr_name = "slope";
    ref.has_type = 1;
    ref.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    Onnx__AttributeProto *refs[1] = {&ref};
    leaky.attribute = refs;
    leaky.n_attribute = 1;
    Onnx__NodeProto *body[2] = {&add, &leaky};
    char *f_in[2] = {"a", "b"}, *f_out[1] = {"out"}, *f_attr[1] = {"slope"};
    Onnx__FunctionProto fn = ONNX__FUNCTION_PROTO__INIT;
    fn.name = "AddLeaky", fn.domain = "my.funcs", fn.input = f_in, fn.n_input = 2, fn.output = f_out, fn.n_output = 1;
    fn.attribute = f_attr, fn.n_attribute = 1, fn.node = body, fn.n_node = 2;
    Onnx__FunctionProto *fns[1] = {&fn};
    Onnx__OperatorSetIdProto custom = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    custom.domain = "my.funcs", custom.has_version = 1, custom.version = 1;
    Onnx__OperatorSetIdProto *opsets[2] = {ob_model(b)->opset_import[0], &custom};
    ob_model(b)->opset_import = opsets;
    ob_model(b)->n_opset_import = 2;
    ob_model(b)->functions = fns;
    ob_model(b)->n_functions = 1;
    crun_model *m = ob_load(b);
    ob_free(b);
    CHECK_MSG(m, "%s", crun_last_error());
    float x[3] = {-4, 1, 2}, z[3] = {1, 1, -6};
    TIn in[2] = {{CRUN_DTYPE_FLOAT, 1, {3}, x}, {CRUN_DTYPE_FLOAT, 1, {3}, z}};
    crun_session *s = run_inputs(m, 1, 2, in);
    CHECK(s);
    crun_tensor t;
    CHECK_OK(crun_session_get_output(s, 0, &t));
    /* h = leaky(x+z, .5) = {-1.5, 2, -2}; y = leaky(h+z, .25) = {-0.125, 3, -2} */
    float want[3] = {-0.125f, 3, -2};
    float got[3];
    memcpy(got, t.data, sizeof got);
    crun_session_free(s);
    crun_model_free(m);
    CHECK_FLOATS(got, want, 3, 1e-6, 0);
}

TEST(memory_cap_is_enforced_before_allocating)
{
    int64_t d[1] = {1 << 20}; /* a 4 MiB initializer */
    float *w = calloc((size_t)1 << 20, sizeof *w);
    OnnxBuilder *b = ob_new(13);
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 1, d, NULL);
    ob_init_f32(b, "w", 1, d, w);
    ob_node(b, "Add", "x,w", "y");
    ob_output(b, "y");
    size_t before = crun_memory_in_use();
    crun_set_memory_limit(2 << 20);
    crun_model *m = ob_load(b);
    const char *msg = crun_last_error();
    bool refused = !m && strstr(msg, "memory limit of 2 MiB");
    crun_set_memory_limit(0);
    crun_model_free(m);
    m = ob_load(b); /* the default cap has room */
    bool loaded = m != NULL;
    crun_model_free(m);
    ob_free(b);
    free(w);
    CHECK_MSG(refused, "a 4 MiB model under a 2 MiB cap: %s", msg);
    CHECK(loaded);
    CHECK_MSG(crun_memory_in_use() == before, "%zu bytes still counted after freeing", crun_memory_in_use() - before);
}
