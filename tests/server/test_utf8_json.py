#!/usr/bin/env python3
"""test_utf8_json.py - the CLI and the server write invalid UTF-8 the same way.

usage: test_utf8_json.py EMBER_BINARY GOLDEN_CASE_DIR

Both go through tools/common/json_writer.c, whose one rule is: each maximal
ill-formed subsequence becomes one \\ufffd escape, as Python's
bytes.decode("utf-8", errors="replace") does. The same hostile byte string
reaches every writer: as a vocab.txt token (`ember tokenize` tokens), as the
model path (`ember info --json` source, the server's /info model_path) and as
--served-model-name (the server's /v1/models id and the "model" field of an
/v1/embeddings response, whose vectors must match `ember embed`'s). Every
copy must be the same escaped bytes, valid JSON that reads back as Python's
decoding.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Server, check, max_diff  # noqa: E402

# lone continuation, truncated 3-byte sequence, surrogate, overlong, byte
# above F4, a valid emoji, DEL and a quote that need escaping
BAD = b"a\x80b\xe2\x82c\xed\xa0\x80d\xc0\xafe\xf5f\xf0\x9f\x98\x80g\x7f\"h"
WANT = BAD.decode("utf-8", errors="replace")


def raw_string_after(data, key):
    """The raw JSON text of the string value of `key` (first occurrence)."""
    m = re.search(re.escape(b'"' + key + b'":') + rb'("(?:[^"\\]|\\.)*")', data)
    check(m is not None, "no", key, "in", data[:300])
    return m.group(1)


def main():
    binary, case = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="ember-utf8-")
    try:
        # a copy of the model whose vocab.txt token 1 is the hostile string
        # (no tokenizer.json, so vocab.txt is the tokenizer), under a
        # directory whose name is the hostile string too
        d = os.path.join(os.fsencode(tmp), BAD.replace(b"/", b"_"))
        shutil.copytree(os.fsencode(case), d, ignore=lambda src, names: [n for n in names if n in (b"tokenizer.json", "tokenizer.json")])
        with open(os.path.join(d, b"vocab.txt"), "rb") as f:
            vocab = f.read().split(b"\n")
        vocab[1] = BAD
        with open(os.path.join(d, b"vocab.txt"), "wb") as f:
            f.write(b"\n".join(vocab))
        model = os.fsdecode(d)
        env = dict(os.environ, HF_HUB_OFFLINE="1")

        def run(*args):
            return subprocess.run([binary, *args], check=True, stdout=subprocess.PIPE, env=env).stdout

        want_raw = None
        copies = {}
        out = run("tokenize", "-m", model, "--input-format", "ids", "1")
        m = re.search(rb'"tokens":\[("(?:[^"\\]|\\.)*")\]', out)
        check(m is not None, "tokenize output", out)
        copies["ember tokenize"] = m.group(1)
        copies["ember info --json"] = raw_string_after(run("info", "-m", model, "--json"), b"source")

        texts = ["hello world", "a second text"]
        cli = [json.loads(l)["embedding"] for l in run("embed", "-m", model, *texts).splitlines()]
        with Server(binary, model, "--served-model-name", os.fsdecode(BAD)) as s:
            status, _, data = s.request("POST", "/v1/embeddings", {"input": texts})
            check(status == 200, "/v1/embeddings", status, data[:300])
            copies["server /v1/embeddings model"] = raw_string_after(data, b"model")
            got = [e["embedding"] for e in json.loads(data)["data"]]
            check(len(got) == len(cli), "row count", len(got), len(cli))
            for g, w in zip(got, cli):
                check(max_diff(g, w) <= 1e-6, "server and ember embed differ", max_diff(g, w))
            status, _, data = s.get("/v1/models")
            check(status == 200, "/v1/models", status)
            copies["server /v1/models id"] = raw_string_after(data, b"id")
            status, _, data = s.get("/info")
            check(status == 200, "/info", status)
            copies["server /info model_path"] = raw_string_after(data, b"model_path")

        for where, raw in copies.items():
            if where in ("ember info --json", "server /info model_path"):
                # the whole path: compare its last component
                val = json.loads(raw)
                check(val.endswith(WANT.replace("/", "_")), where, repr(val))
                continue
            check(json.loads(raw) == WANT, where, "reads back as", repr(json.loads(raw)), "not", repr(WANT))
            if want_raw is None:
                want_raw = raw
            check(raw == want_raw, where, "wrote", raw, "but another writer", want_raw)
        info_cli, info_srv = copies["ember info --json"], copies["server /info model_path"]
        check(info_cli == info_srv, "model path: CLI", info_cli, "server", info_srv)
        print("utf8: %d writers agree: %s" % (len(copies), want_raw.decode()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
