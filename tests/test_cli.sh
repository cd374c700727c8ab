#!/bin/sh
# test_cli.sh — the `ember` command end to end on a fixture model: info
# describes it, embed --input-format ids reproduces the Hugging Face golden
# vectors (JSON Lines, input order, round-trip floats), bad usage fails with
# a clear message and a non-zero status.
# Usage: test_cli.sh EMBER_BINARY GOLDEN_CASE_DIR
set -eu
EMBER=$1
CASE=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$EMBER" info -m "$CASE" > "$TMP/info.txt"
grep -q "^architecture   bert" "$TMP/info.txt"
grep -q "^dimension      64" "$TMP/info.txt"
grep -q "^pooling        cls (sentence-transformers files)" "$TMP/info.txt"
"$EMBER" info -m "$CASE" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["dimension"]==64 and d["pooling"]=="cls" and d["normalize"], d'

"$EMBER" embed -m "$CASE" --input-format ids --input "$CASE/ids.txt" --batch-size 7 --threads 2 > "$TMP/out.jsonl"
"$EMBER" embed -m "$CASE" --input-format ids < "$CASE/ids.txt" > "$TMP/out_stdin.jsonl"
cmp "$TMP/out.jsonl" "$TMP/out_stdin.jsonl"
python3 - "$TMP/out.jsonl" "$CASE/expected.jsonl" <<'PY'
import json, math, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(want), (len(got), len(want))
for g, w in zip(got, want):
    assert g["index"] == w["index"]
    a, b = g["embedding"], w["embedding"]
    dot = sum(x * y for x, y in zip(a, b))
    cos = dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    assert cos >= 0.99999 and max(abs(x - y) for x, y in zip(a, b)) <= 1e-4, (g["index"], cos)
print("cli: %d embeddings match the golden" % len(got))
PY

# NumPy output: the same vectors as the JSON Lines, as float32 [n, 64]
"$EMBER" embed -m "$CASE" -f ids --input "$CASE/ids.txt" --output-format npy -o "$TMP/out.npy"
python3 - "$TMP/out.npy" "$TMP/out.jsonl" <<'PY'
import array, ast, json, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x93NUMPY\x01\x00", data[:8]
hlen = data[8] | data[9] << 8
header = ast.literal_eval(data[10:10 + hlen].decode())
rows = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
assert header["descr"] == "<f4" and header["shape"] == (len(rows), 64), header
vals = array.array("f")
vals.frombytes(data[10 + hlen:])
flat = [x for r in rows for x in r]
assert len(vals) == len(flat) and all(abs(a - b) <= 1e-7 * max(1, abs(b)) for a, b in zip(vals, flat))
print("cli: npy matches jsonl")
PY

# options: Matryoshka dimensions re-normalized; raw pooled vectors
"$EMBER" embed -m "$CASE" -f ids --dimensions 16 "101 1000 1001 102" | python3 -c '
import json,sys; e=json.loads(sys.stdin.readline())["embedding"]; assert len(e)==16 and abs(sum(x*x for x in e)-1)<1e-5'
"$EMBER" embed -m "$CASE" -f ids --no-normalize "101 1000 1001 102" | python3 -c '
import json,sys; e=json.loads(sys.stdin.readline())["embedding"]; assert abs(sum(x*x for x in e)-1)>1e-3'

# bad usage: clear errors, non-zero exit
if "$EMBER" embed -m "$CASE" -f ids "101 abc 102" 2> "$TMP/err"; then exit 1; fi
grep -q "is not a token id" "$TMP/err"
if "$EMBER" embed -m "$CASE" -f ids "101 99999 102" 2> "$TMP/err"; then exit 1; fi
grep -q "outside the vocabulary" "$TMP/err"
if "$EMBER" embed -m "$TMP/nope" -f ids "101 102" 2> "$TMP/err"; then exit 1; fi
grep -q "cannot load model" "$TMP/err"
if "$EMBER" embed -m "$CASE" "some text" 2> "$TMP/err"; then exit 1; fi
grep -q "no tokenizer" "$TMP/err"
if "$EMBER" embed --bogus 2> "$TMP/err"; then exit 1; fi
grep -q "unknown option" "$TMP/err"
echo "test_cli: ok"
