#!/usr/bin/env bash
# Stage 5: evals written back as columns — base vs tuned SmolLM2 on the held-out split of the
# curated and the random mix, the comparison, and the loop back into the next mix's selection.
set -euo pipefail
x() { echo; echo "\$ mixlake $*"; mixlake "$@"; }

run=$(mixlake sql "SELECT run_id FROM runs WHERE status = 'finished' ORDER BY finished_at DESC LIMIT 1" \
  --format csv 2>/dev/null | tail -n +2 | tr -d '"' || true)
if [ -z "$run" ]; then
  echo "no finished training run in the lake: run stage 40 (mixlake train …) first"; exit 1
fi
echo "tuned run: $run"
fast=(--suite heldout --limit 8 --max-length 192 --batch-size 4)

# A bad suite name fails before any model loads.
echo; echo "\$ mixlake eval smollm2 --suite vibes --mix chitchat-curated   # expected to fail"
if mixlake eval smollm2 --suite vibes --mix chitchat-curated; then echo "unexpected success"; exit 1; fi

for mix in chitchat-curated chitchat-random; do
  x eval smollm2 --mix "$mix" "${fast[@]}"
  x eval "$run" --mix "$mix" "${fast[@]}"
done
x eval smollm2 --mix chitchat-curated "${fast[@]}"     # the same eval again: no new version, no new columns
x evals --suite heldout
x eval compare smollm2 "$run" --suite heldout --mix chitchat-curated --top 3 --plot "$DEMO_OUT/compare-curated.png"
x eval compare smollm2 "$run" --suite heldout --mix chitchat-random --top 3

# The eval columns are data: join them with quality scores like any other column.
x sql "SELECT round(quality_heuristic_v1, 1) AS quality, count(*) AS rows,
         round(avg(eval_base_smollm2_heldout_loss), 3) AS base_loss,
         round(avg(eval_${run}_heldout_loss), 3) AS tuned_loss,
         round(avg(eval_${run}_heldout_loss - eval_base_smollm2_heldout_loss), 3) AS delta
       FROM records WHERE eval_${run}_heldout_loss IS NOT NULL GROUP BY ALL ORDER BY quality"
x log -n 4

# The loop back: score a pool of training candidates with both models, then select the hardest
# rows for the base model that the tuned run has not learned yet.
pool=(--mix chitchat-random --split train --suite heldout --limit 16 --max-length 192 --batch-size 4)
x eval smollm2 "${pool[@]}"
x eval "$run" "${pool[@]}"
x mix check queries/mixes/chitchat-hard.yaml
x mix materialize queries/mixes/chitchat-hard.yaml
