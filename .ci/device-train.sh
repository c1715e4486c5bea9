#!/usr/bin/env bash
# The cifar preset trained on Fashion-MNIST on a lent NVIDIA machine for about eight minutes
# (book chapter "Results"), then the sample example's figures from its checkpoint.
#
# Prepare here, in the project's root (.gitignore keeps .gl/ out of git):
#   cargo build --release --features gpu --example cifar10 --example sample
#   mkdir -p .gl/bin .gl/fashion-mnist && cp ../shared/gpu/*.deb .gl/
#   strip -o .gl/bin/cifar10 target/release/examples/cifar10
#   strip -o .gl/bin/sample target/release/examples/sample
#   cp /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz .gl/fashion-mnist/
# Run with the device tool: `bash .ci/device-train.sh`, carry [".gl"], timeout_s 600 (the
# training stops itself after MINUTES, default 8, through SIGTERM, which saves a checkpoint).
#
# Brings back under $OUT (at most 8 files): train.log (the run's and the sampler's output),
# log.csv, losses.png, the last sample grid and the sample example's four figures. The
# checkpoint stays on the machine: with both optimizers' state it is about 270 MB, over the
# 16 MiB a file may bring back.
set -u
OUT=${OUT:-/tmp/out}
MINUTES=${MINUTES:-8}
# DEVICE=cpu MINUTES=1 SAMPLE_EVERY=20 tries the script on a machine without a card.
DEVICE=${DEVICE:-gpu}
SAMPLE_EVERY=${SAMPLE_EVERY:-500}
RUN=/tmp/run
mkdir -p "$OUT"
: >"$OUT/train.log"
if [ "$DEVICE" = gpu ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/train.log"
fi

echo "== training, $MINUTES minutes" | tee -a "$OUT/train.log"
timeout --preserve-status -s TERM $((MINUTES * 60)) .gl/bin/cifar10 --device "$DEVICE" --preset cifar \
  --dataset fashion-mnist --data .gl/fashion-mnist --steps 1000000 --batch 32 \
  --sample-every "$SAMPLE_EVERY" --checkpoint-every 1000 --out "$RUN" >>"$OUT/train.log" 2>&1
echo "exit $? (143: stopped by the time limit's SIGTERM, after saving)" | tee -a "$OUT/train.log"
grep -E "SWD|stopped|saved|time:" "$OUT/train.log" | tail -20

echo "== figures" | tee -a "$OUT/train.log"
timeout 120 .gl/bin/sample "$RUN/checkpoint.safetensors" --device "$DEVICE" --dataset fashion-mnist \
  --data .gl/fashion-mnist --out "$OUT" >>"$OUT/train.log" 2>&1
tail -12 "$OUT/train.log"
last_grid=$(ls "$RUN"/samples_*.png 2>/dev/null | tail -1)
for f in "$RUN/log.csv" "$RUN/losses.png" $last_grid; do cp "$f" "$OUT/"; done
ls -la "$OUT"
