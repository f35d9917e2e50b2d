"""Silero VAD v5 (from the npm package @ricky0123/vad-web, fetched at test time) run as a
stream of 512-sample chunks at 16 kHz, carrying its LSTM state from one call to the next,
in ONE crun session through the C API (libcrun via ctypes, as an app would), compared chunk
by chunk with ONNX Runtime doing the same, within rtol 1e-4 / atol 1e-5."""
import ctypes as C
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

CHUNK, RATE, CHUNKS = 512, 16000, 40


class Tensor(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("rank", C.c_int32), ("dims", C.c_int64 * 8),
                ("data", C.c_void_p), ("size_bytes", C.c_size_t)]


def crun_stream(lib_path, model, audio):
    lib = C.CDLL(lib_path)
    lib.crun_last_error.restype = C.c_char_p
    m, s = C.c_void_p(), C.c_void_p()

    def ok(status):
        if status != 0:
            raise AssertionError("crun: " + lib.crun_last_error().decode())

    ok(lib.crun_model_load_file(model.encode(), C.byref(m)))
    ok(lib.crun_session_create(m, None, C.byref(s)))
    FLOAT, INT64 = 1, 7
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(RATE, np.int64)
    outs = []
    for off in range(0, len(audio) - CHUNK + 1, CHUNK):
        x = np.ascontiguousarray(audio[off:off + CHUNK].reshape(1, CHUNK))
        for i, (arr, dt) in enumerate([(x, FLOAT), (state, FLOAT), (sr, INT64)]):
            dims = (C.c_int64 * max(arr.ndim, 1))(*arr.shape)
            ok(lib.crun_session_set_input(s, i, dt, arr.ndim, dims, arr.ctypes.data_as(C.c_void_p)))
        ok(lib.crun_session_run(s))
        if off == 0:
            first_plans = lib.crun_session_plan_count(s)
        t = Tensor()
        ok(lib.crun_session_get_output(s, 0, C.byref(t)))
        outs.append(np.ctypeslib.as_array(C.cast(t.data, C.POINTER(C.c_float)), (t.size_bytes // 4,)).copy())
        ok(lib.crun_session_get_output(s, 1, C.byref(t)))
        state = np.ctypeslib.as_array(C.cast(t.data, C.POINTER(C.c_float)), (2 * 128,)).copy().reshape(2, 1, 128)
    # The session may plan at creation for default dims and again for the first chunk's
    # real shape; after that, same-shaped chunks must reuse the plan.
    plans = lib.crun_session_plan_count(s) - first_plans
    lib.crun_session_free(s)
    lib.crun_model_free(m)
    return np.concatenate(outs), state, plans


def main():
    p = __import__("argparse").ArgumentParser()
    p.add_argument("--lib", required=True)
    args = p.parse_args()
    model = os.path.join(mt.npm_package("@ricky0123/vad-web", "Silero VAD"), "dist", "silero_vad_v5.onnx")
    # A fixed signal with speech-like bursts and silence: tones with noise, switched on and off.
    rng = np.random.default_rng(7)
    t = np.arange(CHUNK * CHUNKS) / RATE
    envelope = (np.sin(2 * np.pi * 1.5 * t) > 0).astype(np.float32)
    audio = (0.3 * envelope * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
             + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "audio.npy"), audio)
        res = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "ort_stream.js"), mt.ort_dir(), model,
                              tmp, os.path.join(tmp, "audio.npy"), str(CHUNK), str(RATE)],
                             capture_output=True, text=True)
        assert res.returncode == 0, "onnxruntime failed: " + res.stderr
        want_out, want_state = np.load(os.path.join(tmp, "output.npy")), np.load(os.path.join(tmp, "state.npy"))
    got_out, got_state, plans = crun_stream(args.lib, model, audio)
    worst = max(mt.compare("vad probabilities", got_out, want_out), mt.compare("vad state", got_state, want_state))
    assert plans == 0, "the session re-planned %d times for same-shaped chunks" % plans
    print("silero vad v5: %d chunks ok (max abs diff %.2g, speech prob range %.3f..%.3f, %d re-plans)" % (
        len(got_out), worst, got_out.min(), got_out.max(), plans))


if __name__ == "__main__":
    main()
