#!/bin/sh
# The trainer benchmark (issue: the companion trainer). Run from the repo root:
#   bench/trainer.sh            installs what it needs, builds crun, then
#   1. times training of trainer/specs/fashion_cnn.txt on 19,200 Fashion-MNIST images
#      (batch 64, SGD with momentum) with crun and with PyTorch (Debian python3-torch),
#      alternating, at 1 and 2 threads: samples/s of forward + backward + update;
#   2. trains it for real: 3 float epochs (SGD, cosine rate), post-training int8
#      quantization beside it, two QAT epochs, the float, PTQ and QAT exports, and crun running the QAT export on all
#      10,000 test images against the trainer's own fake-quantized forward pass.
# Ends with one line: fp32_acc=... qat_int8_acc=... ptq_int8_acc=... agree=N/10000
# sps_1t=... torch_sps_1t=... sps_2t=... torch_sps_2t=...
set -eu
OUT=${OUT:-build/bench-trainer}
SPEC=trainer/specs/fashion_cnn.txt
SPEED_SAMPLES=19200
scripts/deps test
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
mkdir -p "$OUT"
CRUN=build/crun
PY=/usr/bin/python3

crun_sps() { # threads
    $CRUN train $SPEC --epochs 1 --limit $SPEED_SAMPLES --test-limit 1 --threads "$1" --no-progress |
        sed -n 's/^result: .* sps=\([0-9]*\).*/\1/p'
}
torch_sps() { # threads
    $PY bench/torch_train.py --threads "$1" --samples $SPEED_SAMPLES | sed -n 's/^torch_sps=//p'
}

echo "== training speed, $SPEED_SAMPLES samples, batch 64 (crun and PyTorch alternating)" >&2
sps_1t=$(crun_sps 1)
torch_1t=$(torch_sps 1)
sps_2t=$(crun_sps 2)
torch_2t=$(torch_sps 2)
echo "1 thread:  crun $sps_1t samples/s, PyTorch $torch_1t" >&2
echo "2 threads: crun $sps_2t samples/s, PyTorch $torch_2t" >&2

echo "== 3 float epochs, PTQ, 2 QAT epochs, exports, crun against the trainer on 10,000 test images" >&2
$CRUN train $SPEC --threads 2 --lr 0.03 --schedule cosine --weight-decay 5e-4 --qat 2 --qat-lr 0.01 --ptq 32 --no-progress \
    --export-float "$OUT/fashion_cnn.onnx" --export-ptq "$OUT/fashion_cnn.ptq.onnx" \
    --export "$OUT/fashion_cnn.qat.onnx" --check | tee "$OUT/train.log" >&2
result=$(sed -n 's/^result: //p' "$OUT/train.log")
val() { echo "$result" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
echo "fp32_acc=$(val fp32_acc) qat_int8_acc=$(val qat_int8_acc) ptq_int8_acc=$(val ptq_int8_acc)" \
    "agree=$(val agree) sps_1t=$sps_1t torch_sps_1t=$torch_1t sps_2t=$sps_2t torch_sps_2t=$torch_2t"
