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
# A few held-out rows keep this stage short on CPU; drop --limit for the full split.
fast=(--suite heldout --limit 8 --max-length 192 --batch-size 4)

# A bad suite name fails before any model loads.
echo; echo "\$ mixlake eval smollm2 --suite vibes --mix chitchat-curated   # expected to fail"
if mixlake eval smollm2 --suite vibes --mix chitchat-curated; then echo "unexpected success"; exit 1; fi

x eval smollm2 --mix chitchat-curated "${fast[@]}" --out "$DEMO_OUT/base-curated.jsonl"
# The run is evaluated as it was trained (its nf4 base + adapter); so is the baseline that
# isolates what tuning did: the base model quantized the same way (label base_smollm2_nf4).
x eval smollm2 --precision nf4 --mix chitchat-curated "${fast[@]}"
x eval "$run" --mix chitchat-curated "${fast[@]}"
x eval smollm2 --mix chitchat-random "${fast[@]}"
x eval smollm2 --precision nf4 --mix chitchat-random "${fast[@]}"
x eval "$run" --mix chitchat-random "${fast[@]}"
# Per-row results are a file too (e.g. computed on a GPU box): importing the same ones is a no-op.
x eval import "$DEMO_OUT/base-curated.jsonl"
x evals --suite heldout
x eval compare base_smollm2_nf4 "$run" --suite heldout --mix chitchat-curated --top 3 --plot "$DEMO_OUT/compare-curated.png"
x eval compare base_smollm2_nf4 "$run" --suite heldout --mix chitchat-random --top 3
# What 4-bit quantization alone costs the base model, on the same rows.
x eval compare smollm2 base_smollm2_nf4 --suite heldout --mix chitchat-curated --top 0

# The eval columns are data: join them with quality scores like any other column.
x sql "SELECT round(quality_heuristic_v1, 1) AS quality, count(*) AS rows,
         round(avg(eval_base_smollm2_heldout_loss), 3) AS base_loss,
         round(avg(eval_${run}_heldout_loss), 3) AS tuned_loss,
         round(avg(eval_${run}_heldout_loss - eval_base_smollm2_heldout_loss), 3) AS delta
       FROM records WHERE eval_${run}_heldout_loss IS NOT NULL GROUP BY ALL ORDER BY quality"
x log -n 5

# The loop back: score a pool of training candidates with the base model, then select the
# hardest rows for it that no tuned run has learned yet (queries/mixes/chitchat-hard.yaml).
x eval smollm2 --mix chitchat-random --split train --suite heldout --limit 12 --max-length 192 --batch-size 4
x mix check queries/mixes/chitchat-hard.yaml
x mix materialize queries/mixes/chitchat-hard.yaml
x sql "SELECT m.split, left(m.id, 12) AS id, round(r.eval_base_smollm2_heldout_loss, 3) AS base_loss,
         round(r.eval_${run}_heldout_loss, 3) AS tuned_loss, left(r.text, 50) AS opening
       FROM \"mix__chitchat-hard\" m JOIN records r USING (id) ORDER BY base_loss DESC"
