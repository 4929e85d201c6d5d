#!/usr/bin/env bash
# Stage 20: what is in the data — token counts with the shipped SmolLM2 tokenizer, heuristic
# quality rules with their drop reasons, and the LLM judge on a handful of rows.
set -euo pipefail
x() { echo; echo "\$ mixlake $*"; mixlake "$@"; }

x tokens                                   # n_tokens, n_prompt_tokens, n_completion_tokens
x tokens                                   # same tokenizer again: a no-op, no new version
x sql "SELECT count(*) AS rows, sum(n_tokens) AS tokens, round(avg(n_tokens)) AS avg_tokens, max(n_tokens) AS max_tokens, round(avg(n_completion_tokens), 1) AS avg_last_reply FROM records"

x score quality_heuristic_v1               # score in [0,1] + the rules each row failed
x sql "SELECT reason, count(*) AS rows FROM (SELECT unnest(quality_heuristic_v1_reasons) AS reason FROM records) GROUP BY 1 ORDER BY 2 DESC"
x sql "SELECT quality_heuristic_v1 AS score, quality_heuristic_v1_reasons AS reasons, left(text, 50) AS opening FROM records ORDER BY score, id LIMIT 5"

# Counting with another tokenizer would silently change the column: refused without --replace.
python -c "from curation.models import load_tokenizer; load_tokenizer().save_pretrained('$DEMO_OUT/my-tokenizer')" >/dev/null
echo; echo "\$ mixlake tokens --tokenizer $DEMO_OUT/my-tokenizer   # expected to fail"
if mixlake tokens --tokenizer "$DEMO_OUT/my-tokenizer"; then echo "unexpected success"; exit 1; fi

# The judge is slow on CPU: ask it about five rows only.
ids=$(mixlake sql "SELECT id FROM records ORDER BY id LIMIT 5" --format csv | tail -n +2 | tr -d '"' | sed "s/.*/'&'/" | paste -sd, -)
x score quality_judge_v1 --where "id IN ($ids)"
x sql "SELECT quality_judge_v1 AS judge, quality_judge_v1_reply AS reply, quality_heuristic_v1 AS heuristic, left(text, 50) AS opening FROM records WHERE quality_judge_v1_reply IS NOT NULL"
x log -n 4
