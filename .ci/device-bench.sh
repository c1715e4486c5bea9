#!/usr/bin/env bash
# Measurements on a lent NVIDIA machine (README.md, "Measuring on a real GPU"; book chapter
# "Performance"). Expects, in the ignored folder .gl/: the Vulkan loader packages (*.deb),
# release builds of the examples bench and reference_check in .gl/bin/, optionally the GPU test
# binaries in .gl/tests.tar.xz (and, in .gl/manifest_dir, the checkout path they were built in)
# and the PyTorch reference (vitgan_ref.py, bench.py) in .gl/ref/. Writes JSON lines under $OUT.
# With .gl/bin/bench_base (a build of an earlier commit) the training step is also timed
# alternately with it, base first, twice per batch: the card's speed drifts by a few percent.
set -u
OUT=${OUT:-/tmp/out}
STEPS=${STEPS:-20}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv
B=.gl/bin

echo "== kernels"
timeout 120 $B/bench --device gpu --what matmul,elementwise,dispatch --steps "$STEPS" >"$OUT/kernels.jsonl"
grep -v '_checked\|"matmul_64"\|"matmul_128"' "$OUT/kernels.jsonl" | cut -c1-200

echo "== reference check on the GPU"
timeout 60 $B/reference_check tests/data/golden_tiny.safetensors --device gpu >"$OUT/reference.jsonl"
echo "$(grep -c '"ok": true' "$OUT/reference.jsonl") of $(wc -l <"$OUT/reference.jsonl") tensors agree"

echo "== whole model, ours (one process per batch, so each reports its own memory)"
for batch in 32 64; do
  timeout 120 $B/bench --device gpu --what train --preset cifar --batch $batch --steps "$STEPS" | tee -a "$OUT/ours.jsonl"
done
if [ -x $B/bench_base ]; then
  echo "== training step, alternately with bench_base"
  for round in 1 2; do
    for bin in bench_base bench; do
      for batch in 32 64; do
        printf '%s, batch %s: ' $bin $batch
        timeout 60 $B/$bin --device gpu --what train --preset cifar --batch $batch --steps "$STEPS" \
          | head -1 | tee -a "$OUT/alternated_$bin.jsonl" | grep -o '"ms_median": [0-9.]*'
      done
    done
  done
fi
timeout 120 $B/bench --device gpu --what g_fwd,d_fwd,g_fwdbwd,d_fwdbwd --preset cifar --batch 32 --steps "$STEPS" | tee -a "$OUT/ours.jsonl"
VITGAN_GPU_PROFILE=1 timeout 120 $B/bench --device gpu --what train --preset cifar --batch 32 --steps 2 | tail -3 >"$OUT/profile.jsonl"

if [ -f .gl/ref/bench.py ]; then
  echo "== whole model, PyTorch (eager, fp32, TF32 off)"
  (cd .gl/ref && timeout 200 python3 bench.py --inproc --device cuda --preset cifar --batch 32,64 --tf32 off \
     --what train,g_fwd,d_fwd,g_fwdbwd,d_fwdbwd --flops off --steps "$STEPS" >"$OUT/pytorch.jsonl")
  cut -c1-330 "$OUT/pytorch.jsonl"
fi

if [ -f .gl/tests.tar.xz ] && [ "${TESTS:-1}" = 1 ]; then
  echo "== GPU tests on this card"
  # The test binaries find tests/data through the path they were built in.
  built_in=$(cat .gl/manifest_dir)
  mkdir -p "$(dirname "$built_in")" && ln -sfn "$PWD" "$built_in"
  tar xJf .gl/tests.tar.xz -C /tmp
  for t in /tmp/tests/*; do
    printf '%s: ' "$(basename "$t")"
    CI=1 timeout 60 "$t" --test-threads 8 2>&1 | grep -E "^test result|panicked|FAILED" | head -5
  done | tee "$OUT/tests.txt"
fi
