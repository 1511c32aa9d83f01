#!/usr/bin/env bash
# Here, before a GPU session: copy the campaign's training data into parts that each fit one
# device call (the working tree and carried paths travel together, at most 64 MiB a call).
#
#   bash results/campaign/gpu/pack.sh [DATA]      # DATA: default $AFVSR_SHARED_DATA or ../shared/data
#
# Writes .campaign_gpu/data1 .. .campaign_gpu/dataN (git-ignored through .git/info/exclude), each holding
# whole DAVIS training sequences as davis2016/<seq>/ and at most PART_MB megabytes (default 38),
# and prints the parts. The validation sequences are not copied: the device run does not
# validate (the checkpoints are evaluated back here, results/campaign/README.md).
set -euo pipefail
data=${1:-${AFVSR_SHARED_DATA:-../shared/data}}
part_mb=${PART_MB:-38}
val="blackswan car-roundabout soapbox"   # afvsr.data.shared.DAVIS_VAL
[ -d "$data/davis2016" ] || { echo "pack.sh: no $data/davis2016" >&2; exit 1; }
root=$(git rev-parse --show-toplevel)
grep -qx '/.campaign_gpu/' "$root/.git/info/exclude" 2>/dev/null || echo '/.campaign_gpu/' >> "$root/.git/info/exclude"
rm -rf "$root/.campaign_gpu" && mkdir -p "$root/.campaign_gpu"
part=1 used=0
for seq in "$data"/davis2016/*/; do
  name=$(basename "$seq")
  case " $val " in *" $name "*) continue ;; esac
  size=$(du -sm "$seq" | cut -f1)
  if [ "$used" -gt 0 ] && [ $((used + size)) -gt "$part_mb" ]; then part=$((part + 1)) used=0; fi
  mkdir -p "$root/.campaign_gpu/data$part/davis2016"
  cp -r "$seq" "$root/.campaign_gpu/data$part/davis2016/$name"
  used=$((used + size))
done
du -sm "$root"/.campaign_gpu/data*
