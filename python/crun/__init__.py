"""crun from Python: numpy arrays in and out of libcrun through ctypes.

    import crun
    model = crun.Model("model.onnx")
    session = crun.Session(model, threads=2)
    outputs = session.run({"image": pixels})      # {output name: numpy array}

Everything runs in libcrun (the C library); this module only binds it. It finds the
library through the CRUN_LIBRARY environment variable, then next to this file, then as an
installed `libcrun` (`cmake --install`, ldconfig).
"""
import ctypes as _C
import ctypes.util as _util
import os as _os

import numpy as _np

__all__ = ["Error", "Model", "Session", "TensorInfo", "quantize", "convert_fp16", "version", "library_path"]

_MAX_RANK = 8
_STATUS = {1: "invalid argument", 2: "I/O error", 3: "invalid model", 4: "unsupported", 5: "out of memory",
           6: "runtime failure"}
_DTYPES = {1: _np.float32, 2: _np.uint8, 3: _np.int8, 4: _np.uint16, 5: _np.int16, 6: _np.int32, 7: _np.int64,
           9: _np.bool_, 10: _np.float16, 11: _np.float64, 12: _np.uint32, 13: _np.uint64, 14: _np.complex64,
           15: _np.complex128}
_CODES = {_np.dtype(v): k for k, v in _DTYPES.items()}
_METHODS = {"minmax": 0, "percentile": 1, "entropy": 2}


class Error(Exception):
    """A failed libcrun call: status (the crun_status code) and crun's one-line message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.kind = _STATUS.get(status, "error")


class _TensorInfo(_C.Structure):
    _fields_ = [("name", _C.c_char_p), ("dtype", _C.c_int), ("rank", _C.c_int32), ("dims", _C.c_int64 * _MAX_RANK),
                ("dim_names", _C.c_char_p * _MAX_RANK), ("kind", _C.c_int), ("optional", _C.c_int32)]


class _Tensor(_C.Structure):
    _fields_ = [("name", _C.c_char_p), ("dtype", _C.c_int), ("rank", _C.c_int32), ("dims", _C.c_int64 * _MAX_RANK),
                ("data", _C.c_void_p), ("size_bytes", _C.c_size_t)]


class _DimValue(_C.Structure):
    _fields_ = [("name", _C.c_char_p), ("value", _C.c_int64)]


class _SessionOptions(_C.Structure):
    _fields_ = [("threads", _C.c_int32), ("arena", _C.c_void_p), ("arena_bytes", _C.c_size_t),
                ("dims", _C.POINTER(_DimValue)), ("n_dims", _C.c_size_t), ("backend", _C.c_int32)]


class _QuantizeOptions(_C.Structure):
    _fields_ = [("calib_dir", _C.c_char_p), ("calib_random", _C.c_int32), ("method", _C.c_int),
                ("percentile", _C.c_float), ("per_channel", _C.c_int32), ("exclude", _C.POINTER(_C.c_char_p)),
                ("n_exclude", _C.c_int32), ("threads", _C.c_int32), ("progress", _C.c_int32),
                ("dims", _C.POINTER(_DimValue)), ("n_dims", _C.c_int32), ("weight_bits", _C.c_int32),
                ("block_size", _C.c_int32), ("sensitivity", _C.c_float)]


class _CompileOptions(_C.Structure):
    _fields_ = [("dims", _C.POINTER(_DimValue)), ("n_dims", _C.c_size_t), ("threads", _C.c_int32),
                ("isa", _C.c_char_p)]


class _CompileInfo(_C.Structure):
    _fields_ = [("arena_bytes", _C.c_size_t), ("workspace_bytes", _C.c_size_t), ("file_bytes", _C.c_size_t),
                ("packed_bytes", _C.c_size_t), ("threads", _C.c_int32), ("isa", _C.c_char_p)]


def _dim_values(dims):
    """{symbol: value} as a crun_dim_value array (kept alive by the caller for the call) and its length."""
    dims = dict(dims or {})
    return (_DimValue * max(len(dims), 1))(*[_DimValue(k.encode(), int(v)) for k, v in dims.items()]), len(dims)


def library_path():
    """Where libcrun is loaded from (see the module's docstring)."""
    env = _os.environ.get("CRUN_LIBRARY")
    if env:
        return env
    here = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "libcrun.so")
    if _os.path.exists(here):
        return here
    found = _util.find_library("crun")
    if not found:
        raise OSError("libcrun not found: set CRUN_LIBRARY to the path of libcrun.so, or install crun "
                      "(cmake --install)")
    return found


def _load():
    lib = _C.CDLL(library_path())
    sig = {
        "crun_version": (_C.c_char_p, []),
        "crun_last_error": (_C.c_char_p, []),
        "crun_model_load_file": (_C.c_int, [_C.c_char_p, _C.POINTER(_C.c_void_p)]),
        "crun_model_load_memory": (_C.c_int, [_C.c_void_p, _C.c_size_t, _C.POINTER(_C.c_void_p)]),
        "crun_model_free": (None, [_C.c_void_p]),
        "crun_model_input_count": (_C.c_int32, [_C.c_void_p]),
        "crun_model_output_count": (_C.c_int32, [_C.c_void_p]),
        "crun_model_input_info": (_C.c_int, [_C.c_void_p, _C.c_int32, _C.POINTER(_TensorInfo)]),
        "crun_model_output_info": (_C.c_int, [_C.c_void_p, _C.c_int32, _C.POINTER(_TensorInfo)]),
        "crun_model_metadata": (_C.c_char_p, [_C.c_void_p, _C.c_char_p]),
        "crun_session_options_init": (None, [_C.POINTER(_SessionOptions)]),
        "crun_session_create": (_C.c_int, [_C.c_void_p, _C.POINTER(_SessionOptions), _C.POINTER(_C.c_void_p)]),
        "crun_session_set_input": (_C.c_int, [_C.c_void_p, _C.c_int32, _C.c_int, _C.c_int32,
                                              _C.POINTER(_C.c_int64), _C.c_void_p]),
        "crun_session_run": (_C.c_int, [_C.c_void_p]),
        "crun_session_get_output": (_C.c_int, [_C.c_void_p, _C.c_int32, _C.POINTER(_Tensor)]),
        "crun_session_threads": (_C.c_int32, [_C.c_void_p]),
        "crun_session_free": (None, [_C.c_void_p]),
        "crun_quantize_options_init": (None, [_C.POINTER(_QuantizeOptions)]),
        "crun_quantize_file": (_C.c_int, [_C.c_char_p, _C.c_char_p, _C.POINTER(_QuantizeOptions)]),
        "crun_convert_fp16_file": (_C.c_int, [_C.c_char_p, _C.c_char_p]),
        "crun_compile_options_init": (None, [_C.POINTER(_CompileOptions)]),
        "crun_compile_file": (_C.c_int, [_C.c_char_p, _C.c_char_p, _C.POINTER(_CompileOptions),
                                         _C.POINTER(_CompileInfo)]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


_lib = _load()


def _check(status):
    if status != 0:
        raise Error(status, _lib.crun_last_error().decode("utf-8", "replace"))


def version():
    return _lib.crun_version().decode()


class TensorInfo:
    """A model input or output: name, numpy dtype (None when crun has no numpy match), shape
    (None for a symbolic or unknown dim; the whole shape None when the model gives none)."""

    def __init__(self, ti):
        self.name = ti.name.decode()
        self.dtype = _DTYPES.get(ti.dtype)
        self.shape = None if ti.rank < 0 else tuple(
            (ti.dim_names[k].decode() if ti.dim_names[k] else None) if ti.dims[k] < 0 else ti.dims[k]
            for k in range(ti.rank))

    def __repr__(self):
        return "TensorInfo(%r, %s, %r)" % (self.name, getattr(self.dtype, "__name__", None), self.shape)


class Model:
    """A loaded model (an .onnx path, or its bytes). Sessions keep it alive."""

    def __init__(self, source):
        h = _C.c_void_p()
        if isinstance(source, (bytes, bytearray)):
            buf = _C.create_string_buffer(bytes(source), len(source))
            _check(_lib.crun_model_load_memory(buf, len(source), _C.byref(h)))
        else:
            _check(_lib.crun_model_load_file(_os.fsencode(source), _C.byref(h)))
        self._h = h

    def _infos(self, count, info):
        out = []
        for i in range(count(self._h)):
            ti = _TensorInfo()
            _check(info(self._h, i, _C.byref(ti)))
            out.append(TensorInfo(ti))
        return out

    @property
    def inputs(self):
        return self._infos(_lib.crun_model_input_count, _lib.crun_model_input_info)

    @property
    def outputs(self):
        return self._infos(_lib.crun_model_output_count, _lib.crun_model_output_info)

    def metadata(self, key):
        """The model's metadata_props value for key, or None."""
        v = _lib.crun_model_metadata(self._h, key.encode())
        return None if v is None else v.decode("utf-8", "replace")

    def close(self):
        if getattr(self, "_h", None):
            _lib.crun_model_free(self._h)
            self._h = None

    def __del__(self):
        self.close()


class Session:
    """A session over a model: threads (0 = one per core), values for symbolic dims used
    to plan before the first run (dims={"batch": 8}) and the backend ("native", "xnnpack"
    or "auto"; None: CRUN_BACKEND or native); re-plans when input shapes change."""

    BACKENDS = ("native", "xnnpack", "auto")

    def __init__(self, model, threads=0, dims=None, backend=None):
        if not isinstance(model, Model):
            model = Model(model)
        self.model = model
        opts = _SessionOptions()
        _lib.crun_session_options_init(_C.byref(opts))
        opts.threads = int(threads)
        if backend is not None:
            if backend not in self.BACKENDS:
                raise ValueError("backend must be one of %s, not %r" % (", ".join(self.BACKENDS), backend))
            opts.backend = self.BACKENDS.index(backend)
        arr, n = _dim_values(dims)
        if n:
            opts.dims, opts.n_dims = arr, n
        h = _C.c_void_p()
        _check(_lib.crun_session_create(model._h, _C.byref(opts), _C.byref(h)))
        self._h = h
        self._names = [t.name for t in model.inputs]
        self._out_names = [t.name for t in model.outputs]

    @property
    def threads(self):
        return _lib.crun_session_threads(self._h)

    def run(self, inputs):
        """Runs on inputs (a dict by name, or a list in input order) and returns every output
        as a dict {name: numpy array} (copies the caller owns)."""
        if isinstance(inputs, dict):
            unknown = set(inputs) - set(self._names)
            if unknown:
                raise Error(1, "no model input named %s (inputs: %s)" % (", ".join(sorted(unknown)),
                                                                         ", ".join(self._names)))
            items = [(self._names.index(k), v) for k, v in inputs.items()]
        else:
            items = list(enumerate(inputs))
        keep = []
        for i, value in items:
            a = _np.ascontiguousarray(value)
            code = _CODES.get(a.dtype)
            if code is None:
                raise Error(1, "input %s: numpy dtype %s has no crun type" % (self._names[i], a.dtype))
            if a.ndim > _MAX_RANK:
                raise Error(1, "input %s: rank %d is above %d" % (self._names[i], a.ndim, _MAX_RANK))
            dims = (_C.c_int64 * max(a.ndim, 1))(*a.shape)
            keep.append(a)  # the session reads the data until the run
            _check(_lib.crun_session_set_input(self._h, i, code, a.ndim, dims, a.ctypes.data_as(_C.c_void_p)))
        _check(_lib.crun_session_run(self._h))
        return {name: self._output(k) for k, name in enumerate(self._out_names)}

    def _output(self, k):
        t = _Tensor()
        _check(_lib.crun_session_get_output(self._h, k, _C.byref(t)))
        dt = _DTYPES.get(t.dtype)
        if dt is None:
            raise Error(4, "output %s has a type numpy lacks (crun dtype %d)" % (self._out_names[k], t.dtype))
        shape = tuple(t.dims[i] for i in range(t.rank))
        if t.size_bytes == 0:
            return _np.zeros(shape, dt)
        raw = (_C.c_char * t.size_bytes).from_address(t.data)
        return _np.frombuffer(raw, dt).reshape(shape).copy()

    def close(self):
        if getattr(self, "_h", None):
            _lib.crun_session_free(self._h)
            self._h = None

    def __del__(self):
        self.close()


def quantize(model_path, out_path, calib_dir=None, calib_random=16, method="minmax", percentile=99.99,
             per_channel=True, exclude=(), threads=0, progress=False, dims=None, int4=False, block_size=32,
             sensitivity=0.0):
    """Post-training int8 quantization to a QDQ model (`crun quantize`; see crun.h); with
    int4=True, weight-only 4-bit MatMul/Gemm weights in blocks of block_size instead;
    sensitivity > 0 keeps the ops that quantize worst in float (mixed precision)."""
    if method not in _METHODS:
        raise Error(1, "unknown method %r (minmax, percentile or entropy)" % method)
    o = _QuantizeOptions()
    _lib.crun_quantize_options_init(_C.byref(o))
    o.calib_dir = _os.fsencode(calib_dir) if calib_dir else None
    o.calib_random, o.method, o.percentile = int(calib_random), _METHODS[method], float(percentile)
    o.per_channel, o.threads, o.progress = int(bool(per_channel)), int(threads), int(bool(progress))
    o.sensitivity = float(sensitivity)
    names = (_C.c_char_p * max(len(exclude), 1))(*[e.encode() for e in exclude])
    o.exclude, o.n_exclude = names, len(exclude)
    dv, n = _dim_values(dims)
    if n:
        o.dims, o.n_dims = dv, n
    if int4:
        o.weight_bits, o.block_size = 4, int(block_size)
    _check(_lib.crun_quantize_file(_os.fsencode(model_path), _os.fsencode(out_path), _C.byref(o)))


def convert_fp16(model_path, out_path):
    """Weights stored as float16 (`crun convert --fp16`)."""
    _check(_lib.crun_convert_fp16_file(_os.fsencode(model_path), _os.fsencode(out_path)))


def compile(model_path, out_path, dims=None, threads=1, isa=None):
    """Plans the ONNX model once and writes a compiled model (`crun compile`; see crun.h),
    which Model and Session load like an .onnx file, in a fraction of the time. Returns
    its figures: {arena_bytes, workspace_bytes, file_bytes, packed_bytes, threads, isa}."""
    o = _CompileOptions()
    _lib.crun_compile_options_init(_C.byref(o))
    dv, n = _dim_values(dims)
    if n:
        o.dims, o.n_dims = dv, n
    o.threads = int(threads)
    o.isa = isa.encode() if isa else None
    info = _CompileInfo()
    _check(_lib.crun_compile_file(_os.fsencode(model_path), _os.fsencode(out_path), _C.byref(o), _C.byref(info)))
    return {"arena_bytes": info.arena_bytes, "workspace_bytes": info.workspace_bytes, "file_bytes": info.file_bytes,
            "packed_bytes": info.packed_bytes, "threads": info.threads, "isa": info.isa.decode()}
