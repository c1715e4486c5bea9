#!/usr/bin/env bash
# The Performance chapter's CPU comparison: our training step and a 1024^3 product against
# PyTorch's (reference/bench.py), alternated, both on the same threads, in one session.
#
#   experiments/cpu_vs_pytorch.sh native|avx2 [ROUNDS] > results.jsonl
#
# native: each side uses the best kernels it finds on this CPU. avx2: both are held to AVX2 +
# FMA, so that an AVX-512 host stands in for an AVX2 one (ours: VITGAN_NO_AVX512=1; PyTorch:
# ATEN_CPU_CAPABILITY, MKL and oneDNN limits, checked below). Needs python3 with torch.
# Summarize with: python3 experiments/summarize_cpu_bench.py results.jsonl
set -euo pipefail
isa=${1:?native or avx2}
rounds=${2:-3}
threads=${THREADS:-2}
case $isa in
native) ;;
avx2)
    export VITGAN_NO_AVX512=1 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        ONEDNN_MAX_CPU_ISA=AVX2
    ;;
*) echo "expected native or avx2, found $isa" >&2; exit 2 ;;
esac
export RAYON_NUM_THREADS=$threads
cargo build --release --example bench >&2
bench=target/release/examples/bench
torch_capability=$(python3 -c 'import torch; print(torch.backends.cpu.get_cpu_capability())' 2>/dev/null)
echo "{\"what\": \"setup\", \"isa\": \"$isa\", \"threads\": $threads, \"torch_cpu_capability\": \"$torch_capability\"}"
torch_matmul='
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(2): a @ b
times = []
for _ in range(20):
    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
ms = sorted(times)[len(times) // 2] * 1e3
print(json.dumps({"what": "matmul_tensor", "size": 1024, "side": "pytorch", "ms_median": ms,
                  "gflop_per_s": 2 * 1024**3 / ms / 1e6}))
'
for round in $(seq "$rounds"); do
    for job in "tiny 32 10" "cifar 8 5"; do
        read -r preset batch steps <<<"$job"
        $bench --what train --preset "$preset" --batch "$batch" --steps "$steps" |
            grep '"what": "train"' | sed "s/^{/{\"side\": \"ours\", \"round\": $round, /"
        python3 reference/bench.py --what train --preset "$preset" --batch "$batch" \
            --threads "$threads" --steps "$steps" --flops off 2>/dev/null |
            grep '"train"' | sed "s/^{/{\"side\": \"pytorch\", \"round\": $round, /"
    done
    $bench --what matmul --steps 20 | grep '"matmul_tensor", "size": 1024' |
        sed "s/^{/{\"side\": \"ours\", \"round\": $round, /"
    python3 -c "$torch_matmul" "$threads" | sed "s/^{/{\"round\": $round, /"
done
