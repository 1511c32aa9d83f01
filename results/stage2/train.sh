#!/usr/bin/env bash
# Stage 2 of the method on a weights-campaign run (issue #20): single-head, multi-head,
# rates (1, 3, 5) and the mean-fusion ablation, two seeds each, at the presets' equal budget
# (1,000 steps of batch 8), one run after another on one CPU thread; every run resumes.
#
#   [BACKBONE=N] [GT_DOWNSCALE=1] [PRESETS="..."] bash results/stage2/train.sh RUNS [SEED ...]
#   (from the repository root)
#
# RUNS: the folder for the run folders; SEED: which seeds (default: 0 1); BACKBONE: which campaign
# run is the frozen backbone (default 4, that of the shipped AFVSR models); GT_DOWNSCALE: the
# training data's [data] gt_downscale (default 2, the presets'; 1 trains on DAVIS at full size,
# as the campaign from run 7; the runs are then named ..._b<N>gt1_s<seed>). bf16 autocast where
# the CPU has native bf16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo), fp32 elsewhere. Each run is
# named afvsr_<preset>_b<N>_s<seed>. RESIDUAL (default 1, the presets') trains the attention
# presets with `[model] residual_fusion` (their runs tagged ...res, e.g. afvsr_single_b8gt1res_s0;
# the mean ablation has no residual form and keeps the plain tag); RESIDUAL=0, the paper's
# module, as the runs made before it existed. PRESETS: which of the presets (default: all four,
# "single multihead rates135 mean"). The backbone file
# (results/campaign/basicvsr_campaign_run<N>.safetensors) is kept in the repository so the
# comparison stays reproducible as basicvsr-small moves on.
set -euo pipefail
runs=${1:?usage: bash results/stage2/train.sh RUNS [SEED ...]}
shift
b=${BACKBONE:-4}
gt=${GT_DOWNSCALE:-2}
tag=b$b
[ "$gt" = 2 ] || tag=b${b}gt$gt
residual=true
[ "${RESIDUAL:-1}" = 1 ] || residual=false
backbone=results/campaign/basicvsr_campaign_run$b.safetensors
[ -e "$backbone" ] || { echo "no such backbone: $backbone" >&2; exit 2; }
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1)
precision=fp32
if grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then precision=bf16; fi
for seed in "${seeds[@]}"; do
  for preset in ${PRESETS:-single multihead rates135 mean}; do
    res=$residual name=afvsr_${preset}_${tag}
    if [ "$preset" = mean ]; then res=false; fi
    if [ "$res" = true ]; then name=${name}res; fi
    OMP_NUM_THREADS=1 .venv/bin/afvsr train -c "configs/cpu/afvsr_${preset}.toml" --resume \
      --set run.out_dir="$runs" --set run.name="${name}_s${seed}" --set model.residual_fusion=$res \
      --set run.seed="$seed" --set run.threads=1 --set train.precision="$precision" \
      --set log.tensorboard=false \
      --set train.backbone_checkpoint="$backbone" --set data.gt_downscale="$gt"
  done
done
