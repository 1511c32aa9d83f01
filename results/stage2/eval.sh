#!/usr/bin/env bash
# The comparison table of issue #20 on a weights-campaign run: every finished stage-2 run
# of train.sh and the BasicVSR rows of its backbone (whole clip; 5-, 7-, 11-frame windows), on
# the table protocol (shared:val, first 10 frames per clip) and on the long clips
# (shared:val-long, every frame), fp32, one thread, the AFVSR runs in sequence mode and (on the
# table protocol) in window mode as they are trained; then one table per protocol (seeds merged:
# mean ± SD). BACKBONE=N (default 4) picks the campaign run, as for train.sh; the results go in
# results/stage2/b<N>_val10 and b<N>_val_long (with GT_DOWNSCALE=1, as for train.sh: the
# ..._b<N>gt1_s<seed> runs, in b<N>gt1_val10 and b<N>gt1_val_long). RESIDUAL (default 1), as
# for train.sh: the attention runs tagged ...res and the mean ablation's plain-tagged runs, in
# b<N>[gt1]res_val10 and ..._val_long; RESIDUAL=0 the runs of the paper's module. ICONVSR=FILE
# adds IconVSR's rows (whole clip and 5-frame windows); by default, the campaign's IconVSR whose
# recorded config started from run N.
#
#   [BACKBONE=N] [GT_DOWNSCALE=1] bash results/stage2/eval.sh RUNS   (from the repository root)
#   (an output that exists is kept: delete it, or set FORCE=1, to redo it)
set -euo pipefail
runs=${1:?usage: bash results/stage2/eval.sh RUNS}
b=${BACKBONE:-4}
gt=${GT_DOWNSCALE:-2}
tag=b$b
[ "$gt" = 2 ] || tag=b${b}gt$gt
runs_of=("$runs"/afvsr_*_${tag}_s*/model_best.safetensors)
if [ "${RESIDUAL:-1}" = 1 ]; then
  runs_of=("$runs"/afvsr_*_${tag}res_s*/model_best.safetensors
    "$runs"/afvsr_mean_${tag}_s*/model_best.safetensors)
  tag=${tag}res
fi
out=results/stage2/$tag
backbone=results/campaign/basicvsr_campaign_run$b.safetensors
[ -e "$backbone" ] || { echo "no such backbone: $backbone" >&2; exit 2; }
mkdir -p "${out}_val10" "${out}_val_long"
iconvsr=${ICONVSR:-}
for config in results/campaign/iconvsr_campaign_run*.config.toml; do
  if [ -z "$iconvsr" ] && grep -qs "^backbone_checkpoint = \".*basicvsr_campaign_run$b\.safetensors\"" "$config"; then
    iconvsr=${config%.config.toml}.safetensors
  fi
done
# ev OUTPUT.json ARGS...: afvsr eval of the ARGS into OUTPUT.json, unless it exists already.
ev() {
  local json=$1
  shift
  if [ -e "$json" ] && [ -z "${FORCE:-}" ]; then return 0; fi
  OMP_NUM_THREADS=1 .venv/bin/afvsr eval --device cpu --precision fp32 --gt-downscale 2 "$@" \
    --out "$json" --force
}
# rows SET NAME MODEL W...: MODEL on SET (val10 or val_long) per window W ("" = whole clip).
rows() {
  local set=$1 name=$2 model=$3
  shift 3
  local data=(--data shared:val --max-frames 10)
  if [ "$set" = val_long ]; then data=(--data shared:val-long); fi
  for w in "$@"; do
    ev "${out}_$set/$name${w:+_w$w}.json" --model "$model" ${w:+--window $w} "${data[@]}"
  done
}
# The table protocol first for every model, then the long clips (hours on one thread).
rows val10 basicvsr "$backbone" "" 5 7 11
if [ -n "$iconvsr" ]; then rows val10 iconvsr "$iconvsr" "" 5; fi
finished=()
for model in "${runs_of[@]}"; do
  [ -e "$model" ] || continue
  name=$(basename "$(dirname "$model")")
  [ -e "$(dirname "$model")/model_final.safetensors" ] || { echo "skip $name: not finished"; continue; }
  finished+=("$model")
  ev "${out}_val10/$name.json" --model "$model" --data shared:val --max-frames 10
  ev "${out}_val10/${name}_window.json" --model "$model" --data shared:val --max-frames 10 --mode window
done
rows val_long basicvsr "$backbone" "" 5 7 11
if [ -n "$iconvsr" ]; then rows val_long iconvsr "$iconvsr" "" 5; fi
for model in "${finished[@]}"; do
  ev "${out}_val_long/$(basename "$(dirname "$model")").json" --model "$model" --data shared:val-long
done
for set in val10 val_long; do
  .venv/bin/afvsr table "${out}_$set"/*.json --channel y --out "${out}_$set/table_y.csv"
done
