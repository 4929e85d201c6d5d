#!/usr/bin/env bash
# Stage 1: the lake — ingest real conversations, history, tags, a bad ingest caught and rolled back, SQL.
set -euo pipefail
x() { echo; echo "\$ mixlake $*"; mixlake "$@"; }

x init
x ingest pkg:chitchat --source chitchat
x ingest pkg:chitchat --source chitchat            # same data again: no new version
x tag clean-chitchat
x head -n 3

# A file with a malformed line: the default --on-error=fail writes nothing.
python - "$DEMO_OUT/bad.jsonl" <<'PY'
import json, sys
rows = [{"text": f"Spam offer number {i}! Click http://example.com now!!!"} for i in range(40)]
lines = [json.dumps(r) for r in rows]
lines.insert(7, '{"text": "truncated')
lines.insert(20, '{"text": 42}')
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
echo; echo "\$ mixlake ingest $DEMO_OUT/bad.jsonl --source scraped   # expected to fail"
if mixlake ingest "$DEMO_OUT/bad.jsonl" --source scraped; then echo "unexpected success"; exit 1; fi
x log -n 3

# --on-error=skip keeps the good rows and stores the bad ones with their reasons.
x ingest "$DEMO_OUT/bad.jsonl" --source scraped --on-error skip
x rejects
x diff clean-chitchat latest

# That batch was spam: remove just it, then show a full rollback works too.
batch=$(mixlake sql "SELECT DISTINCT batch FROM records WHERE source = 'scraped'" --format csv 2>/dev/null | tail -n 1 | tr -d '"')
x delete --batch "$batch"
x rollback --to clean-chitchat
x log -n 6

x sql "SELECT source, kind, count(*) AS rows, round(avg(len(messages)), 1) AS avg_turns FROM records GROUP BY ALL"
x sql "SELECT id, left(text, 60) AS opening FROM records WHERE text ILIKE '%pizza%' LIMIT 5"
x stats --plot "$DEMO_OUT/lengths.png"
