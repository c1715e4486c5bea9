#!/usr/bin/env python3
"""Medians and ratios (ours / PyTorch) of experiments/cpu_vs_pytorch.sh's JSON lines.

    python3 experiments/summarize_cpu_bench.py results.jsonl [more.jsonl ...]

A ratio below 1 means our step takes less time, or (for the product) runs at a higher rate
when the ratio is of GFLOP/s (then above 1 is better; the table says which).
"""
import json
import statistics
import sys


def main(paths):
    for path in paths:
        rows = [json.loads(line) for line in open(path) if line.strip()]
        setup = next(r for r in rows if r.get("what") == "setup")
        ours = next((r for r in rows if r.get("side") == "ours"), {})
        print(f"## {path}: {setup['isa']}, {setup['threads']} threads, "
              f"PyTorch CPU capability {setup['torch_cpu_capability']}")
        print(f"machine: {ours.get('card')}, our gemm {ours.get('gemm')}, "
              f"vector flags {ours.get('cpu_vector_flags')}")
        print("| measurement | ours (each round) | PyTorch (each round) | median ratio |")
        print("|---|---|---|---|")
        jobs = [("train", "tiny", 32, "ms_median"), ("train", "cifar", 8, "ms_median"),
                ("matmul_tensor", None, None, "gflop_per_s")]
        for what, preset, batch, key in jobs:
            def values(side):
                return [r[key] for r in rows if r.get("side") == side and r.get("what") == what
                        and (preset is None or (r.get("preset") == preset
                                                and r.get("batch") == batch))]
            mine, theirs = values("ours"), values("pytorch")
            if not mine or not theirs:
                continue
            ratio = statistics.median(mine) / statistics.median(theirs)
            label = (f"train step, {preset} preset, batch {batch} (ms)" if preset
                     else "matmul 1024^3 (GFLOP/s)")
            fmt = lambda xs: " / ".join(f"{x:.1f}" for x in xs)
            print(f"| {label} | {fmt(mine)} | {fmt(theirs)} | {ratio:.2f} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
