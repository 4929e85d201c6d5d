#!/usr/bin/env bash
# Stage 6: the curator's web UI — start `mixlake serve` on the demo lake, fetch the JSON API
# and one page with curl, then stop it (never hangs: bounded waits, server killed on exit).
set -euo pipefail
PORT="${MIXLAKE_UI_PORT:-$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
URL="http://127.0.0.1:$PORT"

echo; echo "\$ mixlake serve --port $PORT &      # read-only, bound to 127.0.0.1"
mixlake serve --port "$PORT" > "$DEMO_OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "$URL/api/log" > /dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$DEMO_OUT/serve.log"; exit 1; }
  sleep 0.2
done

echo; echo "\$ curl '$URL/api/records?limit=3'"
curl -sf --max-time 20 "$URL/api/records?limit=3" | python -c "
import json, sys
page = json.load(sys.stdin)
print('version', page['version'], '-', page['total'], 'rows; columns:', ', '.join(page['columns']))
for row in page['rows']:
    print('  ', row['id'][:12], row['source'].ljust(10), repr(row['text'][:70]))"

echo; echo "\$ curl '$URL/api/records?where=id%20IN%20(SELECT%20*%20FROM%20read_text(%27/etc/passwd%27))'   # refused"
curl -s --max-time 20 "$URL/api/records?where=id%20IN%20(SELECT%20*%20FROM%20read_text(%27/etc/passwd%27))"
echo

echo; echo "\$ curl $URL/history | grep <title>"
curl -sf --max-time 20 "$URL/history" -o "$DEMO_OUT/history.html"
grep -o '<title>[^<]*</title>' "$DEMO_OUT/history.html"
echo "  $(grep -c '<tr>' "$DEMO_OUT/history.html") table rows; saved $DEMO_OUT/history.html"
echo "  (open $URL in a browser while \`mixlake serve\` runs; see docs/ui.md)"
