#!/usr/bin/env bash
# The Ablations chapter's runs: the tiny preset on Fashion-MNIST on the CPU, the paper's
# discriminator and one run for each switch, for each seed. A variant's seeds train at once, one
# thread each. A run whose folder holds a checkpoint is resumed, so the script can be stopped
# (Ctrl-C) and started again, or started again with more steps to extend every run.
#
#   experiments/ablations.sh [OUT_DIR] [STEPS]      defaults: runs/ablations 2000
#   SEEDS="0 1 2" experiments/ablations.sh          seeds, trained at once (default "0 1")
#   VARIANTS="paper no-bcr" experiments/ablations.sh  only these variants (default: all)
#   cargo run --release --example figures -- ablations runs/ablations   the chapter's figures
set -uo pipefail
out=${1:-runs/ablations}
steps=${2:-2000}
seeds=${SEEDS:-"0 1"}
only=${VARIANTS:-}
cargo build --release --example cifar10 || exit 1
bin=target/release/examples/cifar10

# name: the flags that differ from the paper's configuration
variants=(
    "paper:"
    "dot-attention:--set d_attention=dot"
    "spectral-norm:--set d_norm=sn"
    "plain-patches:--set d_patches=plain"
    "no-diffaugment:--set aug_prob=0"
    "no-bcr:--bcr 0"
    "no-normalization:--set d_norm=none"
)
failed=0
for variant in "${variants[@]}"; do
    name=${variant%%:*}
    if [ -n "$only" ] && [[ " $only " != *" $name "* ]]; then
        continue
    fi
    read -r -a flags <<<"${variant#*:}"
    pids=()
    for seed in $seeds; do
        dir=$out/$name/seed$seed
        mkdir -p "$dir"
        resume=()
        [ -f "$dir/checkpoint.safetensors" ] && resume=(--resume)
        echo "$name, seed $seed: $dir (log: $dir.log)"
        RAYON_NUM_THREADS=1 "$bin" --device cpu --preset tiny --dataset fashion-mnist \
            --steps "$steps" --batch 32 --seed "$seed" --sample-every 250 \
            --checkpoint-every 250 --out "$dir" "${flags[@]}" "${resume[@]}" \
            >"$dir.log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || { echo "a run of $name failed (exit $?): see its .log"; failed=1; }
    done
done
exit $failed
