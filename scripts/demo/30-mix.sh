#!/usr/bin/env bash
# Stage 3: mixes — a random and a quality-filtered chitchat mix from SQL-in-YAML specs, pinned to
# a records version; check, materialize, show, diff, export for a trainer without the lake.
set -euo pipefail
x() { echo; echo "\$ mixlake $*"; mixlake "$@"; }

# The curated spec selects on n_tokens, quality_heuristic_v1 and is_dup (stages 20/21 add them);
# when this stage runs on its own, compute them first.
if ! mixlake sql "SELECT n_tokens, quality_heuristic_v1, is_dup FROM records LIMIT 0" >/dev/null 2>&1; then
  echo "(enrichment columns missing: computing them for this stage)"
  mixlake sql "SELECT n_tokens FROM records LIMIT 0" >/dev/null 2>&1 || x tokens
  mixlake sql "SELECT quality_heuristic_v1 FROM records LIMIT 0" >/dev/null 2>&1 || x score quality_heuristic_v1
  mixlake sql "SELECT is_dup FROM records LIMIT 0" >/dev/null 2>&1 || x dedup exact
fi

# A spec problem is reported with the file, the component and the reason, before anything is written.
sed 's/quality_heuristic_v1 >= 0.9/quality_v9 >= 0.9/' queries/mixes/chitchat-curated.yaml > "$DEMO_OUT/broken.yaml"
echo; echo "\$ mixlake mix check $DEMO_OUT/broken.yaml   # expected to fail"
if mixlake mix check "$DEMO_OUT/broken.yaml"; then echo "unexpected success"; exit 1; fi

x mix check queries/mixes/chitchat-random.yaml
x mix materialize queries/mixes/chitchat-random.yaml
x mix materialize queries/mixes/chitchat-curated.yaml
x mix materialize queries/mixes/chitchat-curated.yaml     # same spec + same version: unchanged
x mix ls
x mix show chitchat-curated --sample 2
x mix diff chitchat-random chitchat-curated
x mix export chitchat-curated --format jsonl --out "$DEMO_OUT/curated.jsonl"
echo; echo "\$ head -c 300 $DEMO_OUT/curated.jsonl; cat $DEMO_OUT/curated.manifest.yaml"
head -c 300 "$DEMO_OUT/curated.jsonl"; echo " …"
cat "$DEMO_OUT/curated.manifest.yaml"
