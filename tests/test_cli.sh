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
grep -q "^modules        Transformer(bert) -> Pooling(cls) -> Normalize$" "$TMP/info.txt"
# the Dense chain of a LaBSE-like model, in order, with activations
DENSE="$(dirname "$CASE")/bert-dense-f32"
# a cross-encoder says so (a decoder one: Qwen3ForSequenceClassification); an embedding model does not
RERANK="$(dirname "$CASE")/rerank-qwen3"
"$EMBER" info -m "$RERANK" | grep -q "^reranker       1 label: "
"$EMBER" info -m "$RERANK" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["num_labels"]==1 and d["architecture"]=="qwen3", d'
if "$EMBER" info -m "$CASE" | grep -q "^reranker"; then echo "an embedding model reported as a reranker" >&2; exit 1; fi
"$EMBER" info -m "$DENSE" | grep -q "^modules        Transformer(bert) -> Pooling(.*) -> Dense(.*->.*, tanh) -> Dense(.*) -> Normalize$"
"$EMBER" info -m "$CASE" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["dimension"]==64 and d["pooling"]=="cls" and d["normalize"] and d["modules"].startswith("Transformer(bert)"), d'

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
# every input line is one output row: a blank line in ids / JSON Lines is an
# error naming the line, never silently dropped (indexes would shift)
if printf '101 1000 102\n\n101 1001 102\n' | "$EMBER" embed -m "$CASE" -f ids > "$TMP/out" 2> "$TMP/err"; then exit 1; fi
grep -q "line 2: .*each line must hold one input" "$TMP/err"
if printf '{"text":"a"}\n   \n' | "$EMBER" embed -m "$CASE/../e2e-bert" -f jsonl > "$TMP/out" 2> "$TMP/err"; then exit 1; fi
grep -q "line 2: blank line" "$TMP/err"
# option errors name the command
if "$EMBER" embed -m "$CASE" --batch-size x 2> "$TMP/err"; then exit 1; fi
grep -q "^ember embed: --batch-size: expected an integer" "$TMP/err"
if "$EMBER" embed -m 2> "$TMP/err"; then exit 1; fi
grep -q "^ember embed: option -m needs a value" "$TMP/err"

# output streams: rows already embedded are written (and flushed) while the
# input is still coming, so an interrupted job keeps them
python3 - "$EMBER" "$CASE" "$TMP/stream.jsonl" <<'PY'
import os, signal, subprocess, sys, time
ember, case, out = sys.argv[1:4]
with open(out, "wb") as f:
    p = subprocess.Popen([ember, "embed", "-m", case, "-f", "ids"], stdin=subprocess.PIPE, stdout=f)
    p.stdin.write(b"101 1000 1001 102\n" * 200)
    p.stdin.flush()  # stdin stays open: the job is not done
    deadline = time.time() + 20
    while time.time() < deadline and os.path.getsize(out) == 0:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=20)
rows = open(out, "rb").read().decode().splitlines()
assert len(rows) >= 64, "only %d rows written before SIGINT" % len(rows)
print("cli: %d rows streamed before the input ended" % len(rows))
PY

# non-finite values are an error, never "null": a NaN weight in zero-copy
# mode (which does not scan weights at load) fails the embedding
mkdir "$TMP/nan"
cp -r "$CASE"/. "$TMP/nan/"
python3 - "$TMP/nan/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = h["embeddings.word_embeddings.weight"]
off = 8 + n + t["data_offsets"][0] + 4 * (1000 * 64 + 3)
b[off:off + 4] = struct.pack("<f", float("nan"))
open(p, "wb").write(b)
PY
if EMBER_ZERO_COPY=1 "$EMBER" embed -m "$TMP/nan" -f ids "101 1000 102" > "$TMP/out" 2> "$TMP/err"; then exit 1; fi
grep -q "NaN" "$TMP/err"
if grep -q null "$TMP/out"; then exit 1; fi
if "$EMBER" embed -m "$TMP/nan" -f ids "101 1000 102" > "$TMP/out" 2> "$TMP/err"; then exit 1; fi
grep -q "word_embeddings.weight.*NaN" "$TMP/err"
# --device on any command: a named driver is used, a bad name is a usage
# error, and cuda without a GPU fails with a message saying so
"$EMBER" info --device cpu-ref -m "$CASE" | grep -q "^driver *cpu-ref"
"$EMBER" embed --device=cpu -m "$CASE" -f ids "101 1000 102" > "$TMP/d1"
"$EMBER" embed -m "$CASE" -f ids "101 1000 102" > "$TMP/d2"
cmp "$TMP/d1" "$TMP/d2"
set +e
"$EMBER" embed --device gpu -m "$CASE" -f ids "101 102" 2> "$TMP/err"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q 'expected cpu' "$TMP/err"
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > /dev/null 2>&1; then
  set +e
  "$EMBER" embed --device cuda:0 -m "$CASE" -f ids "101 102" 2> "$TMP/err"; rc=$?
  set -e
  [ "$rc" -ne 0 ] && grep -qiE 'cuda|not available' "$TMP/err"
fi
# --dtype on any command: int8 and bf16 run (info says so) and stay within
# cosine 0.999 of f32 without being equal to it; a bad name is a usage error
"$EMBER" info --dtype bf16 -m "$CASE" | grep -q "^compute *bf16"
"$EMBER" info --dtype=int8 -m "$CASE" | grep -q "^compute *int8"
for d in f32 bf16 int8; do
  "$EMBER" embed --dtype "$d" -m "$CASE" --input-format ids --input "$CASE/ids.txt" > "$TMP/dt-$d"
done
python3 - "$TMP/dt-f32" "$TMP/dt-bf16" "$TMP/dt-int8" <<'PY'
import json, sys
rows = [[json.loads(l)["embedding"] for l in open(f)] for f in sys.argv[1:]]
for other in rows[1:]:
    assert other != rows[0], "reduced precision gave exactly the f32 vectors: not applied?"
    for a, b in zip(rows[0], other):
        cos = sum(x * y for x, y in zip(a, b))  # both L2-normalized
        assert cos >= 0.999, cos
PY
# several chunks (64, 128, 256, ... inputs per call), each written by the
# writer thread while the next is embedded: rows in input order, the same
# vectors as one input at a time, npy equal to JSON Lines
i=0; : > "$TMP/many.txt"
while [ $i -lt 12 ]; do cat "$CASE/ids.txt" >> "$TMP/many.txt"; i=$((i + 1)); done
"$EMBER" embed -m "$CASE" -f ids --input "$TMP/many.txt" > "$TMP/many.jsonl"
"$EMBER" embed -m "$CASE" -f ids --input "$TMP/many.txt" --output-format npy -o "$TMP/many.npy"
python3 - "$TMP/many.jsonl" "$TMP/out.jsonl" "$TMP/many.npy" <<'PY'
import json, struct, sys
many = [json.loads(l) for l in open(sys.argv[1])]
one = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
assert len(many) == 12 * len(one) and len(many) > 64 + 128, len(many)
assert [r["index"] for r in many] == list(range(len(many)))
for k, r in enumerate(many):
    assert r["embedding"] == one[k % len(one)], k
raw = open(sys.argv[3], "rb").read()
hlen = struct.unpack("<H", raw[8:10])[0]
vals = struct.unpack("<%df" % ((len(raw) - 10 - hlen) // 4), raw[10 + hlen:])
dim = len(one[0])
assert len(vals) == len(many) * dim
for k, r in enumerate(many):
    assert all(abs(a - b) <= 1e-7 * max(1, abs(b)) for a, b in zip(vals[k * dim:(k + 1) * dim], r["embedding"])), k
print("cli: %d inputs in chunks, in order, npy equal" % len(many))
PY
# a full disk is a clear error and a non-zero status
if [ -w /dev/full ]; then
  if "$EMBER" embed -m "$CASE" -f ids --input "$TMP/many.txt" -o /dev/full 2> "$TMP/err"; then exit 1; fi
  grep -q "write error: No space left on device" "$TMP/err"
fi
set +e
"$EMBER" embed --dtype fp8 -m "$CASE" -f ids "101 102" 2> "$TMP/err"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q 'expected auto, f32, bf16 or int8' "$TMP/err"
echo "test_cli: ok"
