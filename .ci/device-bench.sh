#!/usr/bin/env bash
# Measurements on a lent NVIDIA machine (see README.md, "Measuring on a real GPU"). Expects, in
# the ignored folder .gl/: the Vulkan loader packages (*.deb), release builds of the examples
# bench and reference_check in .gl/bin/, optionally the GPU test binaries in .gl/tests.tar.xz and
# the PyTorch reference (vitgan_ref.py, bench.py) in .gl/ref/. Writes JSON lines under $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv
B=.gl/bin
STEPS=${STEPS:-10}

echo "== kernels"
timeout 120 $B/bench --device gpu --what matmul,elementwise --steps "$STEPS" | tee "$OUT/kernels.jsonl"

echo "== reference check on the GPU"
timeout 60 $B/reference_check tests/data/golden_tiny.safetensors --device gpu | tail -4

echo "== whole model, ours"
timeout 180 $B/bench --device gpu --what train --preset cifar --batch 32,64 --steps "$STEPS" | tee "$OUT/ours.jsonl"
timeout 120 $B/bench --device gpu --what g_fwd,d_fwd,g_fwdbwd,d_fwdbwd --preset cifar --batch 32 --steps "$STEPS" | tee -a "$OUT/ours.jsonl"

if [ -f .gl/ref/bench.py ]; then
  echo "== whole model, PyTorch (eager, fp32, TF32 off)"
  (cd .gl/ref && timeout 150 python3 bench.py --inproc --device cuda --preset cifar --batch 32,64 --tf32 off \
     --what train,g_fwd,d_fwd,g_fwdbwd,d_fwdbwd --flops off --steps "$STEPS" | tee "$OUT/pytorch.jsonl")
fi

if [ -f .gl/tests.tar.xz ] && [ "${TESTS:-1}" = 1 ]; then
  echo "== GPU tests on this card"
  # The test binaries find tests/data through the path they were built in.
  mkdir -p /work && ln -sfn "$PWD" /work/main
  tar xJf .gl/tests.tar.xz -C /tmp
  for t in /tmp/tests/*; do
    printf '%s: ' "$(basename "$t")"
    CI=1 timeout 60 "$t" --test-threads 8 2>&1 | grep -E "^test result|panicked|FAILED" | head -5
  done | tee "$OUT/tests.txt"
fi
