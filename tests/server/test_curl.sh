#!/usr/bin/env bash
# test_curl.sh — `ember serve` driven by curl, the client most users try
# first: every route, every error status the server promises, and answers
# equal to `ember embed`'s. The python3 tests (test_server.py) go deeper
# (hostile clients, 32 concurrent clients, shutdown); this one checks that a
# stock HTTP client sees the same server.
#
#   tests/server/test_curl.sh EMBER_BINARY MODEL_DIR
set -uo pipefail
EMBER=$1
MODEL=$2
command -v curl >/dev/null || { echo "test_curl: curl not installed (scripts/setup.sh installs it)"; exit 1; }
TMP=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

start() { # start ARGS...: a server on a free loopback port; sets PID, URL
  HF_HUB_OFFLINE=1 "$EMBER" serve -m "$MODEL" --host 127.0.0.1 --port 0 --threads 1 "$@" \
    2>"$TMP/server.log" &
  PID=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$TMP/server.log" && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/server.log"; exit 1; }
    sleep 0.05
  done
  URL=http://$(grep -o 'listening on http://[^ ]*' "$TMP/server.log" | sed 's|.*http://||')
}

stop() { # stop: SIGTERM, and the server must exit 0
  kill -TERM "$PID"
  wait "$PID"
  local rc=$?
  PID=
  [ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
}

# want STATUS METHOD PATH [curl args...]: the response status, body in $TMP/body
want() {
  local status=$1 method=$2 path=$3
  shift 3
  local got
  got=$(curl -sS -o "$TMP/body" -w '%{http_code}' -X "$method" "$URL$path" "$@")
  [ "$got" = "$status" ] || fail "$method $path $*: status $got, want $status: $(head -c 300 "$TMP/body")"
}
body_has() { grep -q -- "$1" "$TMP/body" || fail "body lacks $1: $(head -c 300 "$TMP/body")"; }
JSON=(-H 'Content-Type: application/json')
KEY=(-H 'Authorization: Bearer s3cret')

# ---- routes, with an API key
start --api-key s3cret --max-client-batch 4 --max-body-bytes 4096
want 200 GET /health;  body_has '"status":"ok"'
want 200 GET /ready
want 200 GET /metrics; body_has 'ember_http_requests_total'
want 401 GET /info
want 200 GET /info "${KEY[@]}"; body_has '"max_input_length":512'
want 200 GET /v1/models "${KEY[@]}"; body_has '"object":"list"'
want 200 POST /v1/embeddings "${KEY[@]}" "${JSON[@]}" -d '{"input": ["hello world", "second"]}'
body_has '"object":"embedding"'; body_has '"index":1'; body_has '"prompt_tokens"'
want 200 POST /v1/embeddings "${KEY[@]}" "${JSON[@]}" -d '{"input": "x", "encoding_format": "base64"}'
want 200 POST /v1/embeddings "${KEY[@]}" "${JSON[@]}" -d '{"input": [101, 7592, 102], "dimensions": 8}'
want 200 POST /embed "${KEY[@]}" "${JSON[@]}" -d '{"inputs": "hello world", "normalize": true}'

# ---- the same vector as `ember embed`, printed to 9 significant digits on both sides
"$EMBER" embed -m "$MODEL" -t 1 "hello world" 2>/dev/null |
  python3 -c 'import json,sys; print(" ".join("%.9g" % v for v in json.load(sys.stdin)["embedding"]))' \
  >"$TMP/cli" 2>/dev/null || fail "ember embed"
curl -sS "$URL/embed" "${KEY[@]}" "${JSON[@]}" -d '{"inputs": "hello world"}' |
  python3 -c 'import json,sys; print(" ".join("%.9g" % v for v in json.load(sys.stdin)[0]))' \
  >"$TMP/srv" 2>/dev/null || fail "curl /embed"
if [ ! -s "$TMP/cli" ] || ! cmp -s "$TMP/cli" "$TMP/srv"; then fail "/embed differs from ember embed"; fi

# ---- 32 concurrent curl clients, each answer equal to `ember embed` on its text
for i in $(seq 0 31); do echo "concurrent client $i asks about topic $((i * 7))"; done >"$TMP/texts"
"$EMBER" embed -m "$MODEL" -t 1 -i "$TMP/texts" 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin: print(" ".join("%.9g" % v for v in json.loads(line)["embedding"]))' >"$TMP/cli32"
i=0
CLIENTS=()
while read -r text; do
  curl -sS "$URL/v1/embeddings" "${KEY[@]}" "${JSON[@]}" -d "{\"input\": \"$text\"}" -o "$TMP/c$i.json" &
  CLIENTS+=($!)
  i=$((i + 1))
done <"$TMP/texts"
wait "${CLIENTS[@]}"
for i in $(seq 0 31); do
  python3 -c 'import json,sys; print(" ".join("%.9g" % v for v in json.load(open(sys.argv[1]))["data"][0]["embedding"]))' \
    "$TMP/c$i.json" 2>/dev/null || echo "client $i: no answer"
done >"$TMP/srv32"
[ "$(wc -l <"$TMP/cli32")" = 32 ] || fail "ember embed gave $(wc -l <"$TMP/cli32") lines for 32 texts"
cmp -s "$TMP/cli32" "$TMP/srv32" || fail "32 concurrent clients: answers differ from ember embed"

# ---- every error status
want 401 POST /v1/embeddings "${JSON[@]}" -d '{"input": "x"}'; body_has '"error"'
want 401 POST /embed -H 'Authorization: Bearer wrong' "${JSON[@]}" -d '{"inputs": "x"}'
want 404 GET /nope "${KEY[@]}"
want 405 GET /v1/embeddings "${KEY[@]}"
want 405 DELETE /embed "${KEY[@]}"
want 400 POST /v1/embeddings "${KEY[@]}" "${JSON[@]}" -d '{"input":'
want 400 POST /v1/embeddings "${KEY[@]}" "${JSON[@]}" -d '{"input": 5}'
want 400 POST /embed "${KEY[@]}" "${JSON[@]}" -d '{"inputs": "x", "truncate": 1}'
want 400 POST /embed "${KEY[@]}" "${JSON[@]}" --data-binary $'{"inputs": "\xff\xfe"}'
want 413 POST /embed "${KEY[@]}" "${JSON[@]}" -d '{"inputs": ["a","b","c","d","e"]}'
printf '{"inputs": "%s"}' "$(head -c 5000 /dev/zero | tr '\0' y)" >"$TMP/big.json"
want 413 POST /embed "${KEY[@]}" "${JSON[@]}" --data-binary @"$TMP/big.json"
printf '{"inputs": "%s"}' "$(for _ in $(seq 600); do printf 'word '; done)" >"$TMP/long.json"
want 422 POST /embed "${KEY[@]}" "${JSON[@]}" --data-binary @"$TMP/long.json"
want 200 POST /embed "${KEY[@]}" "${JSON[@]}" -d "$(sed 's/}$/, "truncate": true}/' "$TMP/long.json")"
want 200 GET /metrics; body_has 'ember_http_requests_total{route="/embed",code="413"}'
stop

# ---- 503: the only admission slot is held by a request still sending its body
start --max-concurrent 1
rm -f "$TMP/holding"
python3 - "${URL#http://}" "$TMP/holding" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{")
time.sleep(0.3)  # the server has read the headers and admitted the request
open(sys.argv[2], "w").close()
time.sleep(4)
s.close()
EOF
HOLDER=$!
# wait (bounded) until the holder has its slot: python's start-up on a
# loaded machine can take longer than any fixed sleep
for _ in $(seq 100); do [ -e "$TMP/holding" ] && break; sleep 0.1; done
want 503 POST /embed "${JSON[@]}" -d '{"inputs": "x"}'; body_has 'Overloaded'
wait "$HOLDER"
stop

if [ "$FAILS" -gt 0 ]; then
  echo "test_curl: $FAILS failures"
  exit 1
fi
echo "test_curl: ok"
