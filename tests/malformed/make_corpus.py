#!/usr/bin/env python3
"""Writes the corpus of malformed models and inputs (tests/malformed/cases/) and its
manifest (cases.txt). Every case must make `crun` exit with code 2 and print one line
naming the problem; check.py holds crun to that. Deterministic: re-running it rewrites the
same files.

    /usr/bin/python3 tests/malformed/make_corpus.py
"""
import os
import random
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "cases")
CASES = []  # (name, expected substring of the message, extra crun arguments)


def model(nodes, inputs, outputs, inits=(), opset=13, **kw):
    g = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], **kw)


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def add(name, expect, data, args=(), inputs=None):
    """data: a ModelProto or raw bytes. inputs: {file name: array or bytes} next to it."""
    d = os.path.join(OUT, name)
    os.makedirs(d)
    raw = data.SerializeToString() if isinstance(data, onnx.ModelProto) else data
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(raw)
    for fname, v in (inputs or {}).items():
        path = os.path.join(d, fname)
        if isinstance(v, bytes):
            with open(path, "wb") as f:
                f.write(v)
        else:
            np.save(path, v)
    CASES.append((name, expect, list(args)))


def good_model():
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    return model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
                 [vi("x", [1, 3, 8, 8])], [vi("y", None)], [w])


def byte_cases(rng):
    raw = good_model().SerializeToString()
    for i, cut in enumerate([1, 2, 5, 17, len(raw) // 3, len(raw) // 2, len(raw) - 40, len(raw) - 3]):
        add("truncated_%d" % i, "model.onnx", raw[:cut])
    for i in range(8):
        add("random_bytes_%d" % i, "model.onnx", bytes(rng.getrandbits(8) for _ in range(64 << i)))
    add("empty_file", "no graph", b"")
    add("text_file", "model.onnx", b"this is not a model at all\n" * 20)
    # Wire-type confusion: the graph field (7) written as a varint, the ir_version (1) as bytes.
    add("wire_graph_as_varint", "model.onnx", bytes([0x08, 0x07, 0x38, 0x05]))
    add("wire_irversion_as_bytes", "model.onnx", bytes([0x0a, 0x03, 0x41, 0x42, 0x43]))
    add("wire_huge_length", "model.onnx", bytes([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]))
    add("wire_bad_varint", "model.onnx", bytes([0x08] + [0xff] * 11))
    # Bit flips in a valid model.
    for i in range(10):
        b = bytearray(raw)
        for _ in range(3):
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
        name = "bitflip_%d" % i
        add(name, "", bytes(b))  # any one-line error (or a model that still loads; check.py allows exit 0)
        CASES[-1] = (name, "", ["--allow-success"])


def dims_cases():
    def init_model(dims, data_len=None, dtype=np.float32, raw=True):
        t = TensorProto()
        t.name, t.data_type = "w", TensorProto.FLOAT
        t.dims.extend(dims)
        n = data_len if data_len is not None else int(np.prod([max(d, 0) for d in dims]))
        t.raw_data = np.zeros(max(n, 0), dtype).tobytes()
        return model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", None)], [t])
    add("dim_negative", "negative dim", init_model([2, -3], 6))
    add("dim_overflow", "too large", init_model([1 << 40, 1 << 40], 1))
    add("dim_product_overflow", "too large", init_model([1 << 21] * 3, 1))
    add("dim_huge_single", "too large", init_model([1 << 62], 1))
    add("init_data_short", "raw data", init_model([4, 4], 10))
    add("init_data_long", "raw data", init_model([2, 2], 9))
    add("init_zero_dim_with_data", "raw data", init_model([0, 5], 3))
    t = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    t.dims[0] = 3  # typed field too short for the dims
    add("init_typed_short", "values", model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", None)], [t]))
    t = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    t.data_type = 99
    add("init_bad_dtype", "data type", model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", None)], [t]))
    add("rank_too_high", "rank", init_model([1] * 9, 1))
    # Declared input dims that are invalid.
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2, 3])], [vi("y", None)])
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -5
    add("input_dim_negative", "invalid dim", m)
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2] * 10)], [vi("y", None)])
    add("input_rank_too_high", "rank", m)
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1 << 45, 1 << 45])], [vi("y", None)])
    add("input_dims_overflow", "invalid dim", m)


def graph_cases():
    x, y = vi("x", [2, 3]), vi("y", None)
    add("undefined_input", "'ghost'", model([helper.make_node("Relu", ["ghost"], ["y"])], [x], [y]))
    add("duplicate_output", "defined twice", model([helper.make_node("Relu", ["x"], ["y"]),
                                                    helper.make_node("Sigmoid", ["x"], ["y"])], [x], [y]))
    add("duplicate_initializer", "defined twice", model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [x], [y],
        [numpy_helper.from_array(np.ones(3, np.float32), "w"), numpy_helper.from_array(np.ones(3, np.float32), "w")]))
    add("cycle_two_nodes", "cycle", model([helper.make_node("Add", ["x", "b"], ["a"]),
                                           helper.make_node("Relu", ["a"], ["b"]),
                                           helper.make_node("Relu", ["b"], ["y"])], [x], [y]))
    add("cycle_self", "cycle", model([helper.make_node("Add", ["x", "a"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
                                     [x], [y]))
    add("output_not_defined", "not defined", model([helper.make_node("Relu", ["x"], ["z"])], [x], [y]))
    add("no_outputs", "no outputs", model([helper.make_node("Relu", ["x"], ["z"])], [x], []))
    add("no_graph", "no graph", helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString()[:0]
        + onnx.ModelProto(ir_version=8).SerializeToString())
    add("no_ir_version", "IR version", model([helper.make_node("Relu", ["x"], ["y"])], [x], [y], ir_version=0))
    add("unknown_op", "unsupported op: FancyOp", model([helper.make_node("FancyOp", ["x"], ["y"])], [x], [y]))
    add("unknown_ops_all_named", "unsupported ops: OpA, OpB", model(
        [helper.make_node("OpA", ["x"], ["a"]), helper.make_node("OpB", ["a"], ["y"])], [x], [y]))
    n = helper.make_node("Relu", ["x"], ["y"], domain="com.example")
    add("domain_not_imported", "does not import", model([n], [x], [y]))
    m = model([helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    m.opset_import[0].version = 5000
    add("opset_out_of_range", "invalid version", m)
    add("node_too_few_inputs", "inputs", model([helper.make_node("Add", ["x"], ["y"])], [x], [y]))
    add("node_too_many_inputs", "inputs", model([helper.make_node("Relu", ["x", "x"], ["y"])], [x], [y]))
    add("node_no_op_type", "op_type", model([helper.make_node("", ["x"], ["y"])], [x], [y]))
    add("dtype_mismatch_add", "different types", model(
        [helper.make_node("Add", ["x", "i"], ["y"])], [x, vi("i", [2, 3], TensorProto.INT64)], [y]))
    add("dtype_mismatch_conv", "X is", model(
        [helper.make_node("Conv", ["xi", "w"], ["y"])], [vi("xi", [1, 3, 8, 8], TensorProto.FLOAT)], [y],
        [numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float64), "w")]))
    add("broadcast_mismatch", "cannot broadcast", model(
        [helper.make_node("Add", ["x", "z"], ["y"])], [x, vi("z", [4])], [y]))
    add("matmul_mismatch", "cannot multiply", model(
        [helper.make_node("MatMul", ["x", "z"], ["y"])], [x, vi("z", [4, 5])], [y]))
    add("reshape_bad_size", "cannot reshape", model(
        [helper.make_node("Reshape", ["x", "s"], ["y"])], [x], [y], [numpy_helper.from_array(np.array([4, 4]), "s")]))
    add("reshape_two_minus_one", "more than one -1", model(
        [helper.make_node("Reshape", ["x", "s"], ["y"])], [x], [y], [numpy_helper.from_array(np.array([-1, -1]), "s")]))
    add("gather_axis_out_of_range", "axis", model(
        [helper.make_node("Gather", ["x", "i"], ["y"], axis=5)], [x], [y], [numpy_helper.from_array(np.array([0]), "i")]))
    add("gather_constant_index_out_of_range", "out of range", model(
        [helper.make_node("Gather", ["w", "i"], ["y"])], [], [y],
        [numpy_helper.from_array(np.ones((2, 2), np.float32), "w"), numpy_helper.from_array(np.array([7]), "i")]))
    add("transpose_bad_perm", "perm", model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0])], [x], [y]))
    add("concat_rank_mismatch", "rank", model(
        [helper.make_node("Concat", ["x", "z"], ["y"], axis=0)], [x, vi("z", [2, 3, 1])], [y]))
    add("squeeze_non_unit", "cannot squeeze", model(
        [helper.make_node("Squeeze", ["x", "a"], ["y"])], [x], [y], [numpy_helper.from_array(np.array([1]), "a")]))
    add("cast_to_invalid", "'to'", model([helper.make_node("Cast", ["x"], ["y"], to=77)], [x], [y]))
    add("attribute_wrong_type", "attribute 'axis'", model(
        [helper.make_node("Concat", ["x", "x"], ["y"], axis=1.5)], [x], [y]))
    add("constant_without_value", "attribute", model([helper.make_node("Constant", [], ["y"])], [], [y]))
    add("softmax_axis_out_of_range", "axis", model([helper.make_node("Softmax", ["x"], ["y"], axis=7)], [x], [y]))
    add("flatten_axis_out_of_range", "axis", model([helper.make_node("Flatten", ["x"], ["y"], axis=9)], [x], [y]))


def conv_attr_cases():
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    x, y = vi("x", [1, 3, 8, 8]), vi("y", None)
    def conv(name, expect, **attrs):
        add(name, expect, model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], [x], [y], [w]))
    conv("conv_negative_stride", "strides", strides=[-1, 1])
    conv("conv_zero_stride", "strides", strides=[0, 1])
    conv("conv_zero_group", "group", group=0)
    conv("conv_negative_group", "group", group=-2)
    conv("conv_group_not_dividing", "divisible", group=2)
    conv("conv_negative_pad", "pads", pads=[-1, 0, 0, 0])
    conv("conv_zero_dilation", "dilations", dilations=[0, 1])
    conv("conv_bad_auto_pad", "auto_pad", auto_pad="SOMETIMES")
    conv("conv_kernel_larger_than_input", "does not fit", pads=[0, 0, 0, 0], dilations=[5, 5])
    conv("conv_kernel_shape_mismatch", "kernel_shape", kernel_shape=[5, 5])
    conv("conv_strides_wrong_length", "spatial rank", strides=[1, 1, 1])
    add("conv_weight_channels_wrong", "input channels", model(
        [helper.make_node("Conv", ["x", "w2"], ["y"])], [x], [y],
        [numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w2")]))
    add("conv_rank_mismatch", "rank", model([helper.make_node("Conv", ["x", "w1"], ["y"])], [x], [y],
                                              [numpy_helper.from_array(np.ones((4, 3, 3), np.float32), "w1")]))
    # Zero-size kernels and planes: the window checks multiply dims (a zero divided them once).
    add("conv_zero_kernel", "dim is zero", model([helper.make_node("Conv", ["x", "w0"], ["y"])], [x], [y],
                                                 [numpy_helper.from_array(np.ones((4, 3, 0, 3), np.float32), "w0")]))
    add("conv_zero_plane", "dim is zero", model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[2, 2, 2, 2])],
                                                [vi("x", [1, 3, 0, 8])], [y], [w]))
    # A depthwise window stretched to 2^30 by dilation, strides and pads (two outputs a
    # row): the channel-block kernel's scratch estimate must not overflow; it runs or fails
    # cleanly.
    big = 1 << 29
    add("conv_depthwise_huge_dilation", "", model(
        [helper.make_node("Conv", ["x", "wd"], ["y"], group=3, dilations=[big, big], strides=[2 * big, 2 * big],
                          pads=[2 * big] * 4)], [x], [y],
        [numpy_helper.from_array(np.ones((3, 1, 3, 3), np.float32), "wd")]), ["--allow-success"])
    add("conv_huge_pads", "pads must be in", model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1 << 40] * 4)],
                                             [x], [y], [w]))
    # 8-bit convolutions whose pads and strides are near 2^30: the padded extents would
    # overflow the packed kernels' image sizes, so the reference kernel runs them.
    for name, group, c in (("qconv_depthwise_huge_pads", 4, 4), ("qconv_huge_pads", 1, 8)):
        qw = np.random.default_rng(1).integers(-5, 5, (c, c // group, 3, 3)).astype(np.int8)
        qi = [numpy_helper.from_array(np.array(v, t), n) for n, v, t in
              (("sx", 0.02, np.float32), ("zx", 128, np.uint8), ("sw", 0.01, np.float32), ("zw", 0, np.int8),
               ("sy", 0.1, np.float32), ("zy", 128, np.uint8))] + [numpy_helper.from_array(qw, "qw")]
        big = 1 << 30
        node = helper.make_node("QLinearConv", ["x", "sx", "zx", "qw", "sw", "zw", "sy", "zy"], ["y"], pads=[big] * 4,
                                strides=[big, big], group=group)
        add(name, "", model([node], [vi("x", [1, c, 5, 5], TensorProto.UINT8)], [vi("y", None, TensorProto.UINT8)], qi),
            ["--allow-success"])
    def pool(name, expect, op="MaxPool", **attrs):
        add(name, expect, model([helper.make_node(op, ["x"], ["y"], **attrs)], [x], [y]))
    pool("pool_no_kernel", "kernel_shape")
    pool("pool_zero_kernel", "kernel_shape", kernel_shape=[0, 2])
    pool("pool_negative_stride", "strides", kernel_shape=[2, 2], strides=[-2, 2])
    pool("pool_window_too_large", "does not fit", kernel_shape=[20, 20])
    pool("avgpool_bad_pads", "pads", op="AveragePool", kernel_shape=[2, 2], pads=[-1, 0, 0, 0])


def external_data_cases():
    def ext(name, expect, location, offset=None, make_file=None, length=None):
        t = TensorProto()
        t.name, t.data_type = "w", TensorProto.FLOAT
        t.dims.append(4)
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", location
        if offset is not None:
            e = t.external_data.add()
            e.key, e.value = "offset", str(offset)
        if length is not None:
            e = t.external_data.add()
            e.key, e.value = "length", str(length)
        m = model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", None)], [t])
        add(name, expect, m, inputs={make_file: np.zeros(8, np.float32).tobytes()} if make_file else None)
    ext("external_parent_dir", "leaves the model's folder", "../secret.bin")
    ext("external_absolute", "leaves the model's folder", "/etc/passwd")
    ext("external_nested_escape", "leaves the model's folder", "a/../../secret.bin")
    ext("external_missing", "cannot open", "missing.bin")
    ext("external_too_short", "bytes", "w.bin", offset=24, make_file="w.bin")
    ext("external_bad_offset", "offset", "w.bin", offset="-8", make_file="w.bin")
    ext("external_length_mismatch", "length", "w.bin", make_file="w.bin", length=12)
    ext("external_empty_location", "leaves the model's folder", "")


def subgraph_cases():
    x, y = vi("x", [2]), vi("y", None)
    then_g = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["t"])], "then", [], [vi("t", None)])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [], [vi("e", None)])
    cond = numpy_helper.from_array(np.array(True), "c")
    add("subgraph_missing_value", "'nowhere'", model(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], [x], [y], [cond]))
    add("if_missing_branch", "subgraph", model([helper.make_node("If", ["c"], ["y"], then_branch=else_g)], [x], [y],
                                               [cond]))
    body = helper.make_graph([helper.make_node("FancyOp", ["x"], ["o"])], "body", [], [vi("o", None)])
    add("subgraph_unknown_op", "FancyOp", model(
        [helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=else_g)], [x], [y], [cond]))
    # Nesting deeper than crun accepts.
    g = else_g
    for i in range(40):
        g = helper.make_graph([helper.make_node("If", ["c"], ["n%d" % i], then_branch=g, else_branch=else_g)], "g%d" % i,
                              [], [vi("n%d" % i, None)])
    add("subgraphs_too_deep", "deeper", model([helper.make_node("Identity", ["n39"], ["y"])] + list(g.node), [x], [y],
                                              [cond]))


def runtime_input_cases():
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2, 3])], [vi("y", None)])
    add("input_wrong_shape", "dim 1 is 4", m, ["--input", "x=INPUT"], {"in.npy": np.zeros((2, 4), np.float32)})
    add("input_wrong_rank", "rank", m, ["--input", "x=INPUT"], {"in.npy": np.zeros(6, np.float32)})
    add("input_wrong_dtype", "int64", m, ["--input", "x=INPUT"], {"in.npy": np.zeros((2, 3), np.int64)})
    add("input_unknown_name", "no input named", m, ["--input", "nope=INPUT"], {"in.npy": np.zeros((2, 3), np.float32)})
    add("input_missing_file", "cannot open", m, ["--input", "x=missing.npy"])
    add("input_npy_truncated", "npy", m, ["--input", "x=INPUT"], {"in.npy": np.zeros((2, 3), np.float32)})
    add("input_npy_bad_magic", "magic", m, ["--input", "x=INPUT"], {"in.npy": b"NOTNUMPY" * 10})
    add("input_npy_fortran", "Fortran", m, ["--input", "x=INPUT"], {"in.npy": b""})
    add("input_npy_bad_dtype", "not supported", m, ["--input", "x=INPUT"], {"in.npy": np.zeros((2, 3), np.complex64)})
    add("input_pb_garbage", "TensorProto", m, ["--input", "x=INPUT"], {"in.pb": b"\xff\xff\xff\xff"})
    add("input_pb_short_data", "raw data", m, ["--input", "x=INPUT"], {"in.pb": b""})
    sym = model([helper.make_node("Add", ["a", "b"], ["y"])], [vi("a", ["n", 2]), vi("b", ["n", 2])], [vi("y", None)])
    add("input_symbols_disagree", "(n)", sym, ["--input", "a=INPUT", "--dim", "n=3"],
        {"in.npy": np.zeros((2, 2), np.float32)})
    add("bad_dim_option", "--dim", sym, ["--dim", "n=-4"])
    add("bad_threads_option", "--threads", sym, ["--threads", "x"])
    add("max_memory_too_small", "memory limit", good_model(), ["--max-memory", "1K"])


def fix_special_inputs():
    """Files whose bytes cannot come from np.save directly."""
    d = os.path.join(OUT, "input_npy_truncated")
    raw = open(os.path.join(d, "in.npy"), "rb").read()
    open(os.path.join(d, "in.npy"), "wb").write(raw[:-5])
    d = os.path.join(OUT, "input_npy_fortran")
    np.save(os.path.join(d, "in.npy"), np.asfortranarray(np.zeros((2, 3), np.float32)))
    d = os.path.join(OUT, "input_pb_short_data")
    t = numpy_helper.from_array(np.zeros((2, 3), np.float32), "x")
    t.raw_data = t.raw_data[:-4]
    open(os.path.join(d, "in.pb"), "wb").write(t.SerializeToString())


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    rng = random.Random(1234)
    byte_cases(rng)
    dims_cases()
    graph_cases()
    conv_attr_cases()
    external_data_cases()
    subgraph_cases()
    runtime_input_cases()
    fix_special_inputs()
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write("# name | expected words in the message | extra crun arguments (INPUT: the case's input file)\n")
        for name, expect, args in CASES:
            f.write("%s | %s | %s\n" % (name, expect, " ".join(args)))
    print("wrote %d cases to %s" % (len(CASES), OUT))


if __name__ == "__main__":
    main()
