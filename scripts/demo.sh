#!/usr/bin/env bash
# The whole loop on shipped real data (chitchat-dataset): run by `make demo`.
# Each stage is a script in scripts/demo/, run in name order, sharing one lake.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export MIXLAKE_LAKE="${MIXLAKE_LAKE:-$PWD/demo-lake}"
export DEMO_OUT="${DEMO_OUT:-$PWD/demo-out}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
rm -rf "$MIXLAKE_LAKE" "$DEMO_OUT"
mkdir -p "$DEMO_OUT"
for stage in scripts/demo/[0-9]*.sh; do
  echo
  echo "════════ $(basename "$stage" .sh) ════════"
  bash "$stage"
done
echo
echo "Demo finished. Lake: $MIXLAKE_LAKE · outputs: $DEMO_OUT"
