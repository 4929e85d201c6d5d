#!/usr/bin/env bash
# Stage 22: a quality classifier on the embeddings from stage 21, trained on labels made by SQL.
set -euo pipefail
x() { echo; echo "\$ mixlake $*"; mixlake "$@"; }

has_embedding=$(mixlake sql "SELECT count(*) AS n FROM (DESCRIBE records) WHERE column_name = 'embedding'" --format csv | tail -n 1)
if [ "$has_embedding" = "0" ]; then
  # Stage 21 normally embeds; embed a subset here if it did not run.
  x embed --where "n_tokens < 400"
fi

# Labels a curator might start from: clean, substantial conversations are good; rows the
# heuristic rules flag as too short or repetitive are bad. Only rows with an embedding count.
x label --sql "SELECT id FROM records WHERE embedding IS NOT NULL AND quality_heuristic_v1 = 1 AND n_tokens >= 150 ORDER BY id LIMIT 150" --value good --labeller demo-rules
x label --sql "SELECT id FROM records WHERE embedding IS NOT NULL AND (list_contains(quality_heuristic_v1_reasons, 'too_short') OR list_contains(quality_heuristic_v1_reasons, 'top_ngram_repetition')) ORDER BY id LIMIT 150" --value bad --labeller demo-rules
x sql "SELECT label, labeller, count(*) AS rows FROM labels GROUP BY ALL"

x score quality_classifier_v1              # prints held-out accuracy, scores every embedded row
x score quality_classifier_v1              # same labels: a no-op
x sql "SELECT round(quality_classifier_v1, 1) AS p_good, count(*) AS rows, round(avg(quality_heuristic_v1), 3) AS heuristic FROM records WHERE quality_classifier_v1 IS NOT NULL GROUP BY 1 ORDER BY 1"
