#!/usr/bin/env python3
"""The rest of TEI's API (tools/server/tei.c) against TEI's schema
(router/src/http/types.rs: field names and JSON types) and error body
({"error": str, "error_type": str} with TEI's statuses), and the values
against `ember embed` / `ember rerank`. Standard library only.

Usage: test_tei_routes.py EMBER_BINARY GOLDENS_DIR
"""
import json
import math
import subprocess
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from serverlib import Server, check, cli_embed, max_diff  # noqa: E402


def is_err(status, body, want_status, want_type):
    check(status == want_status, "status", status, "wanted", want_status, body)
    check(isinstance(body, dict) and set(body) == {"error", "error_type"}, "error shape", body)
    check(isinstance(body["error"], str) and body["error_type"] == want_type, body)


def cli_rerank(binary, model, query, texts, *args):
    out = subprocess.run([binary, "rerank", "-m", model, *args, query, *texts],
                         stdout=subprocess.PIPE, check=True, timeout=300).stdout
    return [json.loads(l) for l in out.decode().splitlines()]


def main():
    binary, goldens = sys.argv[1], sys.argv[2]
    emb, rr = goldens + "/e2e-bert", goldens + "/rerank-bert"
    texts = ["Paris is the capital and most populous city of France.",
             "Berlin is the capital of Germany.", "The Seine flows through Paris."]
    with Server(binary, emb) as s:
        st, info = s.post("/tokenize", {"inputs": ["Hello naïve world", "a"]})
        check(st == 200 and isinstance(info, list) and len(info) == 2, st, info)
        for row in info:
            for t in row:
                check(set(t) == {"id", "text", "special", "start", "stop"}, t)
                check(isinstance(t["id"], int) and isinstance(t["text"], str)
                      and isinstance(t["special"], bool), t)
                check((t["start"] is None) == t["special"] and (t["stop"] is None) == t["special"], t)
        check([t["text"] for t in info[0]] == ["[CLS]", "hello", "naive", "world", "[SEP]"]
              or info[0][2]["start"] == 6, info[0])
        st, dec = s.post("/decode", {"ids": [t["id"] for t in info[0]]})
        check(st == 200 and isinstance(dec, list) and isinstance(dec[0], str), st, dec)
        st, dec2 = s.post("/decode", {"ids": [[101, 7592, 102]], "skip_special_tokens": False})
        check(st == 200 and dec2 == ["[CLS] hello [SEP]"], dec2)
        st, sim = s.post("/similarity", {"inputs": {"source_sentence": texts[0], "sentences": texts}})
        check(st == 200 and isinstance(sim, list) and len(sim) == 3
              and all(isinstance(x, float) or isinstance(x, int) for x in sim), sim)
        vecs = cli_embed(binary, emb, texts)
        want = [sum(a * b for a, b in zip(vecs[0], v)) for v in vecs]
        check(max(abs(a - b) for a, b in zip(sim, want)) < 1e-5, sim, want)
        st, root = s.post("/", {"inputs": texts})
        st2, emb_ = s.post("/embed", {"inputs": texts})
        check(st == 200 and root == emb_ and max_diff(root[0], vecs[0]) < 1e-6, st)
        st, all_ = s.post("/embed_all", {"inputs": ["hello world", "a"]})
        check(st == 200 and len(all_) == 2 and len(all_[0]) == 4 and len(all_[1]) == 3
              and all(isinstance(x, float) for x in all_[0][0]), st)
        st, inf = s.get("/info")[0], json.loads(s.get("/info")[2])
        for k, ty in [("model_id", str), ("model_dtype", str), ("model_type", dict),
                      ("max_concurrent_requests", int), ("max_input_length", int),
                      ("max_batch_tokens", int), ("max_client_batch_size", int),
                      ("tokenization_workers", int), ("version", str)]:
            check(isinstance(inf.get(k), ty), k, inf.get(k))
        check("model_sha" in inf and "embedding" in inf["model_type"]
              and isinstance(inf["model_type"]["embedding"]["pooling"], str), inf)
        # errors
        is_err(*s.post("/rerank", {"query": "q", "texts": ["a"]}), 424, "Backend")
        is_err(*s.post("/similarity", {"inputs": "x"}), 422, "Validation")
        is_err(*s.post("/tokenize", {"inputs": 3}), 422, "Validation")
        is_err(*s.post("/decode", {"ids": [10 ** 9]}), 422, "Tokenizer")
        is_err(*s.post("/embed_all", {"inputs": []}), 422, "Validation")
        st, h, body = s.request("POST", "/tokenize", b"{bad")
        is_err(st, json.loads(body), 422, "Validation")
    with Server(binary, rr) as s:
        q = "what is the capital of france?"
        st, res = s.post("/rerank", {"query": q, "texts": texts, "return_text": True})
        check(st == 200 and len(res) == 3, st, res)
        for r in res:
            check(set(r) == {"index", "score", "text"} and isinstance(r["index"], int)
                  and isinstance(r["score"], float) and r["text"] == texts[r["index"]], r)
        check([r["score"] for r in res] == sorted((r["score"] for r in res), reverse=True), res)
        cli = cli_rerank(binary, rr, q, texts)
        check([r["index"] for r in res] == [r["index"] for r in cli]
              and max(abs(a["score"] - b["score"]) for a, b in zip(res, cli)) < 1e-6, res, cli)
        st, raw = s.post("/", {"query": q, "texts": texts, "raw_scores": True})
        check(st == 200 and set(raw[0]) == {"index", "score"}, raw)
        by = {r["index"]: r["score"] for r in raw}
        for r in res:
            check(abs(1 / (1 + math.exp(-by[r["index"]])) - r["score"]) < 1e-6, r, by)
        inf = json.loads(s.get("/info")[2])
        check("reranker" in inf["model_type"], inf["model_type"])
        is_err(*s.post("/rerank", {"query": q, "texts": []}), 400, "Empty")
        is_err(*s.post("/rerank", {"query": q}), 422, "Validation")
        is_err(*s.post("/rerank", {"query": q, "texts": ["x " * 2000], "truncate": False}),
               413, "Validation")
        is_err(*s.post("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}}),
               424, "Backend")
    print("test_tei_routes: ok")


if __name__ == "__main__":
    main()
