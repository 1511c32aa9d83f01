#!/usr/bin/env bash
# On the GPU machine (the device tool's last call of a session), from the repository root:
#
#   bash results/campaign/gpu/train.sh MINUTES [--set KEY=VALUE ...]
#
# Merges the parts that pack.sh made (.campaign_gpu/data1..N, carried one per call), measures the
# steps per second of configs/gpu/basicvsr_campaign.toml on a 30-step probe, then trains a
# cosine schedule sized to end within MINUTES (validation off: the device has no validation
# data) and copies model_final.safetensors (EMA weights), metrics.jsonl, train.log and
# config.toml to $OUT. Ship nothing from it before the evaluation in results/campaign/README.md.
set -euo pipefail
minutes=${1:?usage: train.sh MINUTES [--set KEY=VALUE ...]}
shift
out=${OUT:?OUT is the folder whose files come back}
data=.campaign_gpu/shared
mkdir -p "$data/davis2016"
for part in .campaign_gpu/data*/davis2016; do
  for seq in "$part"/*; do [ -e "$data/davis2016/$(basename "$seq")" ] || cp -r "$seq" "$data/davis2016/"; done
done
for name in blackswan car-roundabout soapbox; do mkdir -p "$data/davis2016/$name"; done
echo "training sequences: $(ls "$data/davis2016" | wc -l) folders (3 empty validation ones)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
export AFVSR_SHARED_DATA=$PWD/$data PYTHONUNBUFFERED=1
workers=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
common=(-c configs/gpu/basicvsr_campaign.toml --set run.out_dir=.campaign_gpu/runs --set val.every=0
        --set run.num_workers=$workers --set log.every=10 "$@")
start=$(date +%s)
python3 -m afvsr train "${common[@]}" --set run.name=probe --set train.iterations=30 \
  --set train.warmup_iters=5 --set log.checkpoint_every=0 > "$out/probe.log" 2>&1 || { tail -20 "$out/probe.log"; exit 1; }
rate=$(python3 -c "import json; r=[json.loads(l) for l in open('.campaign_gpu/runs/probe/metrics.jsonl')]; print(r[-1]['it_s'])")
left=$(( minutes * 60 - ($(date +%s) - start) - 60 ))    # a minute for start-up and the export
steps=$(python3 -c "print(max(50, int($rate * $left * 0.9) // 50 * 50))")
echo "probe: $rate it/s; training $steps steps in about $left s"
timeout -s TERM $(( left + 30 ))s python3 -m afvsr train "${common[@]}" --set train.iterations=$steps \
  --set log.checkpoint_every=500 || echo "train exited with $?"
run=.campaign_gpu/runs/basicvsr_campaign_gpu
for f in model_final.safetensors model_last.safetensors metrics.jsonl train.log config.toml; do
  if [ -f "$run/$f" ]; then cp "$run/$f" "$out/"; fi
done
ls -la "$out"
