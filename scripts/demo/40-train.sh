#!/usr/bin/env bash
# Stage 4: QLoRA on the curated chitchat mix (real SmolLM2-135M, CPU, a few dozen steps), the run
# registry, the exposure ledger, impact of a slice, per-row loss, and a reply from the tuned adapter.
set -euo pipefail
x() { echo; echo "\$ mixlake $*"; mixlake "$@"; }

MIX="${DEMO_TRAIN_MIX:-chitchat-curated}"
x model prepare smollm2
x train training/configs/smollm2-chitchat.yaml --set mix="$MIX" --set output_dir="$DEMO_OUT/runs"
run=$(mixlake sql "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1" --format csv | tail -n 1 | tr -d '"')

x runs
x runs show "$run" --plot "$DEMO_OUT/loss-$run.png"

# The exposure ledger: which records each optimizer step consumed (in mix order).
x sql "SELECT step, epoch, position, left(record_id, 16) AS record FROM exposures WHERE run_id = '$run' ORDER BY step, position LIMIT 6"

# Per-row training loss came back as a column: the hardest rows are worth a look.
x sql "SELECT id, round(train_loss_$run, 3) AS loss, left(text, 60) AS opening FROM records WHERE train_loss_$run IS NOT NULL ORDER BY loss DESC LIMIT 5"

# Which runs and mixes used a slice? Here: the rows this run found hardest; any SQL works,
# e.g. --where "text ILIKE '%pizza%'" or --batch <ingest batch>.
x impact --where "train_loss_$run >= (SELECT quantile_cont(train_loss_$run, 0.75) FROM records)"

x generate "Hi! Do you have any plans for the weekend?" --run "$run" --max-new-tokens 40
