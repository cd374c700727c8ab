#!/usr/bin/env python3
"""test_server.py - integration tests of `ember serve` over loopback HTTP.

usage: test_server.py GROUP EMBER_BINARY GOLDENS_DIR

GROUP is one of routes, errors, hostile, concurrency, shutdown (one CTest
test each). Every server runs on 127.0.0.1 with --port 0 and is killed when
the test ends, pass or fail. Vectors are compared with `ember embed` on the
same inputs: the server must give the same float32 values (the test prints
the largest difference; it allows 1e-6, in practice they are identical).
"""
import base64
import json
import math
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Server, check, cli_embed, f32, max_diff  # noqa: E402

TOL = 1e-6
LONG = "the quick brown fox jumps over the lazy dog " * 80  # ~720 tokens > 512


def load_texts(goldens, case="e2e-bert"):
    with open(os.path.join(goldens, case, "texts.jsonl")) as f:
        return [json.loads(l)["text"] for l in f]


def load_ids(goldens, case="e2e-bert"):
    with open(os.path.join(goldens, case, "ids.txt")) as f:
        return [[int(x) for x in l.split()] for l in f if l.strip()]


def same(got, want, what):
    check(len(got) == len(want), what, "count", len(got), len(want))
    worst = 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        check(len(g) == len(w), what, "row", i, "dims", len(g), len(w))
        d = max_diff(g, w)
        worst = max(worst, d)
        check(d <= TOL, what, "row", i, "differs by", d)
    return worst


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def b64_floats(s):
    raw = base64.b64decode(s)
    return list(struct.unpack("<%df" % (len(raw) // 4), raw))


def oai(srv, inputs, **kw):
    body = {"input": inputs}
    body.update(kw)
    status, r = srv.post("/v1/embeddings", body)
    check(status == 200, "POST /v1/embeddings", status, r)
    return r


def tei(srv, inputs, **kw):
    body = {"inputs": inputs}
    body.update(kw)
    status, r = srv.post("/embed", body)
    check(status == 200, "POST /embed", status, r)
    return r


def wait_metric(srv, name, want, timeout=5):
    """Completion callbacks run just after the response is sent: poll."""
    deadline = time.time() + timeout
    while True:
        v = srv.metrics().get(name)
        if v == want or time.time() > deadline:
            return v
        time.sleep(0.02)


# ---------------------------------------------------------------- routes


def test_routes(ember, goldens):
    bert = os.path.join(goldens, "e2e-bert")
    modern = os.path.join(goldens, "e2e-modernbert")
    texts = [t for t in load_texts(goldens)[:40] if len(t) < 1500][:32]
    ref = cli_embed(ember, bert, texts)
    ref8 = cli_embed(ember, bert, texts[:5], "--dimensions", "8")
    raw = cli_embed(ember, bert, texts[:5], "--no-normalize")
    raw8 = cli_embed(ember, bert, texts[:5], "--no-normalize", "--dimensions", "8")
    worst = 0.0
    with Server(ember, bert, "--log-probes") as s:
        for path in ("/health", "/", "/ping"):
            status, h, body = s.get(path)
            check(status == 200 and json.loads(body) == {"status": "ok"}, path, status, body)
        status, h, body = s.request("HEAD", "/health")
        check(status == 200 and body == b"", "HEAD /health", status, body)
        status, h, body = s.get("/ready")
        check(status == 200, "/ready", status)
        status, h, body = s.get("/info")
        info = json.loads(body)
        check(status == 200 and info["model_id"] == bert and info["max_input_length"] == 512
              and info["model_type"] == {"embedding": {"pooling": "cls"}} and info["dimension"] == 32
              and info["max_client_batch_size"] == 32 and info["auto_truncate"] is False
              and info["model_dtype"] == "float32" and info["version"], "/info", info)
        status, h, body = s.get("/v1/models")
        models = json.loads(body)
        check(status == 200 and models["object"] == "list" and models["data"][0]["id"] == bert,
              "/v1/models", models)

        # OpenAI: one string, a list, token ids, base64, dimensions, model echo
        r = oai(s, texts[0])
        check(r["object"] == "list" and r["model"] == bert and len(r["data"]) == 1
              and r["data"][0]["object"] == "embedding" and r["data"][0]["index"] == 0, r)
        check(r["usage"]["prompt_tokens"] == r["usage"]["total_tokens"] > 0, r["usage"])
        worst = max(worst, same([r["data"][0]["embedding"]], ref[:1], "oai single"))
        r = oai(s, texts, model="my-model")
        check(r["model"] == "my-model", r["model"])
        check([d["index"] for d in r["data"]] == list(range(len(texts))), "indexes")
        worst = max(worst, same([d["embedding"] for d in r["data"]], ref, "oai list"))
        rb = oai(s, texts, encoding_format="base64")
        floats = [d["embedding"] for d in r["data"]]
        decoded = [b64_floats(d["embedding"]) for d in rb["data"]]
        check(all(f32(a) == b for row_a, row_b in zip(floats, decoded) for a, b in zip(row_a, row_b)),
              "base64 differs from float output")
        check(rb["usage"] == r["usage"], "usage", rb["usage"], r["usage"])
        r8 = oai(s, texts[:5], dimensions=8)
        worst = max(worst, same([d["embedding"] for d in r8["data"]], ref8, "oai dimensions"))
        for d in r8["data"]:
            check(len(d["embedding"]) == 8 and abs(norm(d["embedding"]) - 1) < 1e-5, "matryoshka norm")
        ids = load_ids(goldens)[:3]
        ids_ref = cli_embed_ids(ember, bert, ids)
        r = oai(s, ids[0])
        worst = max(worst, same([r["data"][0]["embedding"]], ids_ref[:1], "oai ids"))
        check(r["usage"]["prompt_tokens"] == len(ids[0]), "ids usage", r["usage"])
        r = oai(s, ids)
        worst = max(worst, same([d["embedding"] for d in r["data"]], ids_ref, "oai id lists"))
        r = oai(s, [texts[0], ids[1]])
        worst = max(worst, same([d["embedding"] for d in r["data"]], [ref[0], ids_ref[1]], "mixed"))
        status, _, _ = s.request("POST", "/embeddings", {"input": "x"})
        check(status == 200, "/embeddings alias", status)

        # TEI: one string, a list, normalize, dimensions, truncation
        r = tei(s, texts[0])
        worst = max(worst, same(r, ref[:1], "tei single"))
        r = tei(s, texts)
        worst = max(worst, same(r, ref, "tei list"))
        worst = max(worst, same(tei(s, texts[:5], normalize=False), raw, "tei raw"))
        worst = max(worst, same(tei(s, texts[:5], dimensions=8), ref8, "tei dims"))
        worst = max(worst, same(tei(s, texts[:5], normalize=False, dimensions=8), raw8, "raw dims"))
        right = tei(s, LONG + " tail words here", truncate=True)
        left = tei(s, LONG + " tail words here", truncate=True, truncation_direction="Left")
        left2 = tei(s, LONG + " tail words here", truncate=True, truncation_direction="left")
        check(right != left and left == left2, "truncation direction")
        long_ref = cli_embed(ember, bert, [LONG])
        worst = max(worst, same(tei(s, LONG, truncate=True), long_ref, "truncated"))
        worst = max(worst, same(tei(s, ""), cli_embed(ember, bert, [""]), "empty string"))
        r = tei(s, ["a\u0000b"])
        check(len(r) == 1 and len(r[0]) == 32, "NUL in text")

        check(wait_metric(s, "ember_requests_in_flight", 0) == 0, "in flight after requests")
        m = s.metrics()
        check(m.get('ember_http_requests_total{route="/v1/embeddings",code="200"}', 0) >= 8, "count oai")
        check(m.get('ember_http_requests_total{route="/embed",code="200"}', 0) >= 9, "count tei")
        check(m["ember_tokens_total"] > 0 and m["ember_inputs_total"] > 0, "tokens")
        check(m["ember_queue_depth"] == 0 and m["ember_ready"] == 1 and m["ember_healthy"] == 1, m)
        check('ember_http_request_duration_seconds_count{route="/embed"}' in m, "latency histogram")
        check("ember_batch_size_count" in m and "ember_batch_tokens_bucket{le=\"+Inf\"}" in m, "batch hist")
        check(m["process_resident_memory_bytes"] > 0, "rss")
        log = s.stderr()
        check(" POST /v1/embeddings 200 inputs=1 tokens=" in log and " GET /health 200 " in log,
              "request log", log[-2000:])
        busy = subprocess.run([ember, "serve", "-m", bert, "--port", str(s.port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)
        check(busy.returncode == 1 and b"cannot listen" in busy.stderr, "port in use", busy.stderr)
        check(s.terminate() == 0, "exit status")

    # prompts (ModernBERT case: query/document), default prompt, JSON log lines
    mtexts = texts[:6]
    q_ref = cli_embed(ember, modern, mtexts, "--prompt-name", "query")
    d_ref = cli_embed(ember, modern, mtexts, "--prompt-name", "document")
    with Server(ember, modern, "--default-prompt-name", "document", "--log-format", "json",
                "--served-model-name", "nomic-like") as s:
        worst = max(worst, same(tei(s, mtexts, prompt_name="query"), q_ref, "prompt query"))
        worst = max(worst, same(tei(s, mtexts), d_ref, "default prompt"))
        r = oai(s, mtexts)
        check(r["model"] == "nomic-like", r["model"])
        worst = max(worst, same([d["embedding"] for d in r["data"]], d_ref, "oai default prompt"))
        r = oai(s, mtexts, prompt_name="query")  # extension (extra_body in the OpenAI SDK)
        worst = max(worst, same([d["embedding"] for d in r["data"]], q_ref, "oai prompt_name"))
        status, body = s.post("/embed", {"inputs": "x", "prompt_name": "nope"})
        check(status == 400 and "nope" in body["error"], status, body)
        status, h, body = s.get("/info")
        info = json.loads(body)
        check(info["prompts"] == {"query": "search_query: ", "document": "search_document: "}
              and info["default_prompt_name"] == "document" and info["model_id"] == "nomic-like", info)
        lines = [json.loads(l) for l in s.stderr().splitlines() if l.startswith("{")]
        check(any(l["path"] == "/embed" and l["status"] == 200 and l["inputs"] == 6 and l["tokens"] > 0
                  and l["latency_ms"] > 0 for l in lines), "json log", lines)
        check(s.terminate() == 0, "exit status")
    print("routes: ok (largest difference from ember embed: %g)" % worst)


def cli_embed_ids(ember, model, ids):
    inp = "".join(" ".join(map(str, row)) + "\n" for row in ids)
    out = subprocess.run([ember, "embed", "-m", model, "-f", "ids"], input=inp.encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    return [json.loads(l)["embedding"] for l in out.decode().splitlines()]


# ---------------------------------------------------------------- errors


def expect(s, path, body, status, kind="tei", headers=None, raw=False):
    if raw:
        st, h, data = s.request("POST", path, body, headers)
    else:
        st, h, data = s.request("POST", path, body, headers)
    check(st == status, path, json.dumps(body)[:120] if not isinstance(body, bytes) else body[:120],
          "->", st, data[:300])
    obj = json.loads(data)
    if kind == "oai":
        check(isinstance(obj.get("error"), dict) and obj["error"]["message"] and obj["error"]["type"],
              "OpenAI error shape", obj)
    else:
        check(isinstance(obj.get("error"), str) and obj.get("error_type"), "TEI error shape", obj)
    return obj, h


def test_errors(ember, goldens):
    bert = os.path.join(goldens, "e2e-bert")
    auth = {"Authorization": "Bearer s3cret"}
    with Server(ember, bert, "--api-key", "s3cret", "--max-client-batch", "4",
                "--max-body-bytes", "4096") as s:
        # 401, and the routes that stay open
        expect(s, "/v1/embeddings", {"input": "x"}, 401, "oai")
        expect(s, "/v1/embeddings", {"input": "x"}, 401, "oai", {"Authorization": "Bearer wrong"})
        expect(s, "/v1/embeddings", {"input": "x"}, 401, "oai", {"Authorization": "s3cret"})
        obj, h = expect(s, "/embed", {"inputs": "x"}, 401)
        check(h.get("www-authenticate") == "Bearer", h)
        st, h, _ = s.request("GET", "/info")
        check(st == 401, "/info without key", st)
        for path in ("/health", "/ready", "/metrics"):
            check(s.get(path)[0] == 200, path, "open")
        check(s.post("/v1/embeddings", {"input": "x"}, auth)[0] == 200, "with key")
        check(s.request("GET", "/info", None, auth)[0] == 200, "/info with key")

        # 404, 405
        st, h, data = s.request("GET", "/nope", None, auth)
        check(st == 404 and json.loads(data)["error_type"], st, data)
        st, h, data = s.request("POST", "/v1/nope", {"input": "x"}, auth)
        check(st == 404 and isinstance(json.loads(data)["error"], dict), st, data)
        st, h, data = s.request("GET", "/v1/embeddings", None, auth)
        check(st == 405 and h.get("allow") == "POST", st, h)
        st, h, data = s.request("POST", "/health", {}, auth)
        check(st == 405 and h.get("allow") == "GET, HEAD", st, h)
        st, h, data = s.request("DELETE", "/embed", None, auth)
        check(st == 405, st)

        # 400: malformed JSON and wrong types
        bad_oai = [b'{"input":', b"[1, 2]", b"", b'"text"', b"{}", b'{"input": 5}', b'{"input": [1.5]}',
                   b'{"input": [{"a": 1}]}', b'{"input": [["a"]]}', b'{"input": [1, "a"]}',
                   b'{"input": "x", "encoding_format": "hex"}', b'{"input": "x", "dimensions": 0}',
                   b'{"input": "x", "dimensions": 33}', b'{"input": "x", "dimensions": "8"}',
                   b'{"input": "x", "dimensions": 8.0}', b'{"input": "x", "model": 5}',
                   b'{"input": [999999]}', b'{"input": [-1]}', b'{"input": [[101, 102], []]}',
                   b'{"input": "x", "input": "y"}', b'{"input": "\xff\xfe"}', b'{"input": "\\ud800"}',
                   b'{"input": null}', b'{"input": true}']
        for body in bad_oai:
            expect(s, "/v1/embeddings", body, 400, "oai", auth)
        bad_tei = [b'{"inputs": "x", "normalize": "yes"}', b'{"inputs": "x", "truncate": 1}',
                   b'{"inputs": "x", "truncation_direction": "up"}', b'{"inputs": "x", "prompt_name": 3}',
                   b'{"inputs": "x", "prompt_name": "nope"}', b'{"input": "x"}']
        for body in bad_tei:
            expect(s, "/embed", body, 400, "tei", auth)
        obj, _ = expect(s, "/embed", {"inputs": []}, 400, "tei", auth)
        check(obj["error_type"] == "Empty", obj)
        expect(s, "/v1/embeddings", {"input": []}, 400, "oai", auth)

        # 413: too many inputs, body too large (Content-Length and chunked)
        obj, _ = expect(s, "/embed", {"inputs": ["a"] * 5}, 413, "tei", auth)
        check(obj["error_type"] == "Validation" and "batch size 5" in obj["error"], obj)
        expect(s, "/v1/embeddings", {"input": ["a"] * 5}, 413, "oai", auth)
        expect(s, "/embed", {"inputs": "y" * 5000}, 413, "tei", auth)
        expect(s, "/v1/embeddings", {"input": "y" * 5000}, 413, "oai", auth)
        chunked = raw_chunked(s, "/embed", b'{"inputs": "' + b"z" * 6000 + b'"}', auth)
        check(chunked.startswith(b"HTTP/1.1 413"), "chunked too large", chunked[:200])
        small = raw_chunked(s, "/embed", b'{"inputs": "chunked body"}', auth)
        check(small.startswith(b"HTTP/1.1 200"), "chunked", small[:200])

        # 422 (TEI) / 400 (OpenAI): too long without truncation; ids are never cut
        long_text = "word " * 700
        obj, _ = expect(s, "/embed", {"inputs": long_text[:4000]}, 422, "tei", auth)
        check("at most 512" in obj["error"], obj)
        obj, _ = expect(s, "/v1/embeddings", {"input": long_text[:4000]}, 400, "oai", auth)
        check(obj["error"]["code"] == "context_length_exceeded", obj)
        check(s.post("/embed", {"inputs": long_text[:4000], "truncate": True}, auth)[0] == 200, "truncate")
        expect(s, "/embed", {"inputs": [[101] * 513]}, 422, "tei", auth)

        # odd but valid
        check(s.post("/embed", {"inputs": ""}, auth)[0] == 200, "empty string")
        check(s.post("/embed", {"inputs": "x", "normalize": None, "dimensions": None}, auth)[0] == 200,
              "nulls are defaults")
        check(s.post("/v1/embeddings", {"input": "x", "user": {"any": 1}, "extra": 1}, auth)[0] == 200,
              "unknown fields are ignored")
        m = s.metrics()
        check(m.get('ember_http_requests_total{route="/v1/embeddings",code="400"}', 0) >= len(bad_oai),
              "400 counted")
        check(m.get('ember_http_requests_total{route="other",code="404"}', 0) >= 1, "404 counted")
        check(s.terminate() == 0, "exit status")

    # 503: request bodies buffered over --max-pending-bytes
    with Server(ember, bert, "--max-pending-bytes", "1000") as s:
        obj, h = expect(s, "/embed", {"inputs": "p" * 2000}, 503)
        check(obj["error_type"] == "Overloaded", obj)
        check(s.post("/embed", {"inputs": "small"})[0] == 200, "small body")
        chunked = raw_chunked(s, "/embed", b'{"inputs": "' + b"q" * 3000 + b'"}', {})
        check(chunked.startswith(b"HTTP/1.1 503"), "chunked over pending bytes", chunked[:200])
        check(wait_metric(s, "ember_pending_body_bytes", 0) == 0, "pending bytes released")
        check(s.terminate() == 0, "exit status")

    # 503: every admission slot taken (a request still sending its body holds one)
    with Server(ember, bert, "--max-concurrent", "1") as s:
        body = json.dumps({"inputs": "held"}).encode()
        body += b" " * (100 - len(body))
        holder = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        holder.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100\r\n\r\n" + body[:10])
        time.sleep(0.3)
        obj, h = expect(s, "/embed", {"inputs": "x"}, 503)
        check(obj["error_type"] == "Overloaded" and h.get("retry-after") == "1", obj, h)
        expect(s, "/v1/embeddings", {"input": "x"}, 503, "oai")
        check(s.get("/health")[0] == 200, "health while full")
        holder.sendall(body[10:])
        resp = read_response(holder)
        holder.close()
        check(resp.startswith(b"HTTP/1.1 200"), "held request", resp[:200])
        check(wait_metric(s, "ember_requests_in_flight", 0) == 0, "slot released")
        check(s.post("/embed", {"inputs": "x"})[0] == 200, "after release")
        m = s.metrics()
        check(m.get('ember_http_requests_total{route="/embed",code="503"}') == 1, "503 counted")
        check(s.terminate() == 0, "exit status")
    print("errors: ok")


def raw_chunked(s, path, body, headers):
    h = "".join("%s: %s\r\n" % kv for kv in headers.items())
    req = ("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n%s\r\n"
           % (path, h)).encode()
    for i in range(0, len(body), 1000):
        part = body[i:i + 1000]
        req += b"%x\r\n" % len(part) + part + b"\r\n"
    req += b"0\r\n\r\n"
    return s.raw(req)


def read_response(sock, timeout=30):
    """Reads one HTTP/1.1 response with a Content-Length."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


# ---------------------------------------------------------------- hostile


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def closed_within(sock, seconds):
    """True when the server closes `sock` (or resets it) within `seconds`."""
    sock.settimeout(seconds)
    t0 = time.time()
    try:
        while True:
            if not sock.recv(65536):
                return True, time.time() - t0
    except socket.timeout:
        return False, time.time() - t0
    except (ConnectionResetError, BrokenPipeError):
        return True, time.time() - t0


def test_hostile(ember, goldens):
    bert = os.path.join(goldens, "e2e-bert")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    with Server(ember, bert, "--idle-timeout", "2", "--request-timeout", "3", "--max-connections", "100",
                "--max-body-bytes", "100000", "--http-threads", "2", "--threads", "1") as s:
        ok = lambda: s.post("/embed", {"inputs": "still fine"})[0] == 200  # noqa: E731

        # a huge Content-Length is refused before any body byte is sent
        t0 = time.time()
        resp = s.raw(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n"
                     b"Expect: 100-continue\r\n\r\n", timeout=5)
        check(resp.startswith(b"HTTP/1.1 413") and time.time() - t0 < 3, "huge length", resp[:200])

        # slow sender: a stalled body is closed by the idle timeout
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\"")
        closed, dt = closed_within(sk, 10)
        sk.close()
        check(closed and dt < 6, "stalled body not closed", dt)
        # a body dripping a byte every 0.5 s is closed by the request timeout
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        t0 = time.time()
        closed = False
        try:
            for _ in range(40):
                sk.sendall(b" ")
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        dt = time.time() - t0
        if not closed:
            closed, _ = closed_within(sk, 2)
        sk.close()
        check(closed and dt < 8, "dripping body not closed", dt)
        # idle connection without a request
        sk = socket.create_connection(("127.0.0.1", s.port))
        closed, dt = closed_within(sk, 10)
        sk.close()
        check(closed and dt < 6, "idle connection not closed", dt)

        # deep nesting, garbage, huge headers
        for depth in (3000, 200000):
            body = b'{"inputs": ' + b"[" * depth + b"]" * depth + b"}"
            if len(body) > 100000:
                body = b'{"inputs": ' + b"[" * 49000 + b"}"
            st, h, data = s.request("POST", "/embed", body)
            check(st == 400, "nesting", depth, st, data[:200])
        resp = s.raw(b"GARBAGE\r\n\r\n", timeout=5)
        check(resp == b"" or resp.startswith(b"HTTP/1.1 400"), "garbage", resp[:100])
        resp = s.raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", timeout=5)
        check(resp == b"" or resp[9:12] in (b"431", b"413", b"400"), "huge header", resp[:100])
        resp = s.raw(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", timeout=5)
        check(resp == b"" or resp[9:12] in (b"400", b"413"), "bad length", resp[:100])
        check(ok(), "server answers after odd requests")

        # many connections: more than --max-connections are refused, the server survives
        socks = []
        for _ in range(2000):
            try:
                socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=2))
            except OSError:
                break  # the listen backlog is full too
        time.sleep(0.5)
        check(s.proc.poll() is None, "server died under many connections")
        fds = len(os.listdir("/proc/%d/fd" % s.proc.pid))
        check(len(socks) > 500 and fds < 100 + 64, "connections", len(socks), "server fds", fds)
        n_socks = len(socks)
        for sk in socks:
            sk.close()
        time.sleep(0.5)
        check(ok(), "server answers after many connections")

        # memory stays flat under repeated bad and good requests
        def barrage():
            for i in range(150):
                s.request("POST", "/embed", b'{"inputs": "' + b"x" * 90000)  # truncated JSON
                s.request("POST", "/v1/embeddings", {"input": ["word " * 100] * 32})
                s.request("POST", "/embed", {"inputs": "y" * (i % 7)})
        barrage()
        r1 = rss_kb(s.proc.pid)
        barrage()
        barrage()
        r2 = rss_kb(s.proc.pid)
        # AddressSanitizer keeps freed memory in quarantine (256 MB): no RSS bound there
        with open(ember, "rb") as f:
            asan = b"AddressSanitizer" in f.read()
        check(asan or r2 - r1 < 20000, "RSS grew from %d to %d kB" % (r1, r2))
        check(wait_metric(s, "ember_pending_body_bytes", 0) == 0, "pending bytes released")
        check(wait_metric(s, "ember_requests_in_flight", 0) == 0, "slots released")
        check(ok(), "server answers at the end")
        check(s.terminate() == 0, "exit status")
    print("hostile: ok (%d connections held open, server fds %d; RSS %d kB -> %d kB over 900 more "
          "requests)" % (n_socks, fds, r1, r2))


# ---------------------------------------------------------------- concurrency


def test_concurrency(ember, goldens):
    bert = os.path.join(goldens, "e2e-bert")
    texts = load_texts(goldens)  # 120 texts, 3 longer than 512 tokens (cut, as ember embed does)
    ref = cli_embed(ember, bert, texts)
    ref16 = cli_embed(ember, bert, texts, "--dimensions", "16")
    raw16 = cli_embed(ember, bert, texts, "--dimensions", "16", "--no-normalize")
    n_clients = 32
    errors, results, worst = [], {}, [0.0]
    lock = threading.Lock()
    for server_args in ((), ("--workers", "2", "--threads", "1")):
        worst[0] = 0.0
        results.clear()
        run_clients(ember, bert, texts, ref, ref16, raw16, n_clients, server_args, errors, results,
                    worst, lock)


def run_clients(ember, bert, texts, ref, ref16, raw16, n_clients, server_args, errors, results, worst,
                lock):
    with Server(ember, bert, "--auto-truncate", "--http-threads", "4", *server_args) as s:
        barrier = threading.Barrier(n_clients)

        def client(k):
            try:
                mine = list(range(k, len(texts), n_clients))
                barrier.wait()
                for rnd in range(3):
                    for j, i in enumerate(mine):
                        mode = (k + j + rnd) % 5
                        if mode == 0:
                            got = oai(s, texts[i])["data"][0]["embedding"]
                            want = ref[i]
                        elif mode == 1:
                            got = b64_floats(oai(s, [texts[i]], encoding_format="base64")["data"][0]["embedding"])
                            want = ref[i]
                        elif mode == 2:
                            got = tei(s, texts[i])[0]
                            want = ref[i]
                        elif mode == 3:
                            got = tei(s, [texts[i]], dimensions=16)[0]
                            want = ref16[i]
                        else:
                            got = oai(s, [texts[i]], dimensions=16)["data"][0]["embedding"] \
                                if rnd % 2 else tei(s, texts[i], dimensions=16, normalize=False)[0]
                            want = ref16[i] if rnd % 2 else raw16[i]
                        d = max_diff(got, want)
                        with lock:
                            worst[0] = max(worst[0], d)
                            results[(k, rnd, i)] = d
                        if len(got) != len(want) or d > TOL:
                            raise AssertionError("client %d text %d mode %d differs by %g" % (k, i, mode, d))
                    # and the whole share as one batch
                    r = oai(s, [texts[i] for i in mine])
                    for d_, i in zip(r["data"], mine):
                        if max_diff(d_["embedding"], ref[i]) > TOL:
                            raise AssertionError("client %d batch text %d differs" % (k, i))
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append("client %d: %r" % (k, e))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        dt = time.time() - t0
        check(not errors, "\n".join(errors[:10]))
        check(len(results) == 3 * len(texts), "results", len(results))
        m = s.metrics()
        calls, reqs = m["ember_embed_calls_total"], m["ember_batch_size_count"]
        n_req = sum(v for k, v in m.items() if k.startswith("ember_http_requests_total{route=\"/")
                    and ("embed" in k))
        check(m["ember_embed_errors_total"] == 0, "embed errors")
        check(s.terminate() == 0, "exit status")
    print("concurrency: ok %s: %d clients, %d requests in %.1fs, %d model calls (merged), "
          "largest difference from ember embed: %g"
          % (" ".join(server_args) or "(defaults)", n_clients, n_req, dt, calls, worst[0]))


# ---------------------------------------------------------------- shutdown


def test_shutdown(ember, goldens):
    bert = os.path.join(goldens, "e2e-bert")
    want = cli_embed(ember, bert, ["in flight"])[0]
    # 1. SIGTERM while a request is in flight: it is answered, /ready says 503
    #    during the drain delay, new connections are refused after, exit 0
    with Server(ember, bert, "--drain-delay", "1", "--shutdown-timeout", "20") as s:
        body = json.dumps({"inputs": "in flight"}).encode()
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        sk.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:5])
        time.sleep(0.2)
        s.proc.send_signal(15)
        time.sleep(0.2)
        st, h, data = s.get("/ready")
        check(st == 503, "/ready while draining", st, data)
        check(s.post("/embed", {"inputs": "x"})[0] == 200, "still serving during the drain delay")
        time.sleep(1.3)
        refused = False
        try:
            st, h, data = s.get("/health")
            refused = st == 503
        except OSError:
            refused = True
        check(refused, "new connection accepted after the drain delay")
        check(s.proc.poll() is None, "exited with a request in flight")
        sk.sendall(body[5:])
        resp = read_response(sk)
        sk.close()
        check(resp.startswith(b"HTTP/1.1 200"), "in-flight request", resp[:300])
        got = json.loads(resp.partition(b"\r\n\r\n")[2])[0]
        check(max_diff(got, want) <= TOL, "in-flight vector")
        rc = s.proc.wait(30)
        check(rc == 0, "exit status", rc, s.stderr()[-2000:])
        log = s.stderr()
        check("draining" in log and "stopped" in log, log[-1000:])

    # 2. SIGTERM under load from 16 clients: every request gets a whole answer
    #    (200 with the right vector, or 503), a refused connection, or a reset
    #    before any response byte; the process exits 0
    with Server(ember, bert, "--shutdown-timeout", "20") as s:
        stop = threading.Event()
        outcomes, bad = {}, []
        lock = threading.Lock()

        def client(k):
            while not stop.is_set():
                try:
                    st, r = s.post("/embed", {"inputs": "in flight"}, timeout=30)
                    if st == 200:
                        ok = max_diff(r[0], want) <= TOL
                        key = "200" if ok else "200-wrong"
                    else:
                        key = str(st)
                except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
                        http_client_errors()) as e:
                    key = type(e).__name__
                    if isinstance(e, ConnectionRefusedError):
                        time.sleep(0.01)
                with lock:
                    outcomes[key] = outcomes.get(key, 0) + 1
                    if key not in ("200", "503") and not key.endswith("Error") \
                            and key != "RemoteDisconnected":
                        bad.append(key)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        s.proc.send_signal(15)
        rc = s.proc.wait(30)
        stop.set()
        for t in threads:
            t.join(60)
        check(rc == 0, "exit status under load", rc, s.stderr()[-2000:])
        check(not bad and outcomes.get("200", 0) > 0, "outcomes", outcomes)

    # 3. a stalled upload does not hold shutdown past --shutdown-timeout; SIGINT works too
    with Server(ember, bert, "--shutdown-timeout", "1", "--idle-timeout", "60") as s:
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.2)
        t0 = time.time()
        s.proc.send_signal(2)
        rc = s.proc.wait(30)
        dt = time.time() - t0
        sk.close()
        check(rc == 0 and dt < 5, "timeout shutdown", rc, dt, s.stderr()[-1000:])
    print("shutdown: ok (outcomes under load: %s)" % outcomes)


# ---------------------------------------------------------------- reliability


def test_reliability(ember, goldens):
    bert = os.path.join(goldens, "e2e-bert")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

    # 1. slow-header clients: 25 sockets each trickling one header byte every
    # second (faster than --idle-timeout, so MHD's idle timer never fires)
    # against --max-connections 20. /health must still answer promptly, and
    # every trickler must be cut by its absolute deadline.
    with Server(ember, bert, "--max-connections", "20", "--idle-timeout", "5", "--request-timeout", "5",
                "--http-threads", "2", "--threads", "1") as s:
        slow = []
        for i in range(25):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            c.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
            slow.append(c)
        header = b"a" * 100
        t0 = time.time()
        answered = []
        closed = set()
        k = 0
        while time.time() - t0 < 12:
            for i, c in enumerate(slow):
                if i in closed:
                    continue
                try:
                    c.sendall(header[k:k + 1])
                except OSError:
                    closed.add(i)
            k += 1
            if 1.5 < time.time() - t0 < 4.5 and len(answered) < 3:
                h0 = time.time()
                try:
                    st, _, _ = s.request("GET", "/health", timeout=3)
                    answered.append((st, time.time() - h0))
                except OSError as e:
                    answered.append((str(e), time.time() - h0))
            time.sleep(1.0)
        check(answered and all(a[0] == 200 and a[1] < 2 for a in answered),
              "/health under 25 slow-header clients:", answered)
        for i, c in enumerate(slow):
            if i not in closed:
                ok, _ = closed_within(c, 0.5)
                if ok:
                    closed.add(i)
            c.close()
        check(len(closed) == 25, "slow-header sockets cut by the deadline: %d of 25" % len(closed))
        check(s.post("/embed", {"inputs": "after"})[0] == 200, "server fine after the slow clients")

    with Server(ember, bert, "--max-body-bytes", "100000", "--request-timeout", "20",
                "--idle-timeout", "20", "--threads", "1") as s:
        # 5. two different Content-Length headers: 400, not "first wins"
        body = b'{"inputs": "hello"}'
        for extra in (b"Content-Length: %d\r\n" % (len(body) + 5), b"Content-Length: 0\r\n"):
            r = s.raw(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n" % len(body) + extra + b"Connection: close\r\n\r\n" + body)
            check(r.startswith(b"HTTP/1.1 400"), "duplicate Content-Length:", r[:200])
        r = s.raw(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % len(body) + b"0\r\n\r\n")
        check(r.startswith(b"HTTP/1.1 400"), "Content-Length with Transfer-Encoding:", r[:200])
        # the same value twice is not ambiguous
        r = s.raw(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                  % (len(body), len(body)) + body)
        check(r.startswith(b"HTTP/1.1 200"), "identical Content-Length twice:", r[:200])

        # 9. a chunked body announcing one huge chunk gets its 413 as soon as
        # the limit is crossed, not when the request timeout closes it
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\n")
        t0 = time.time()
        got = b""
        try:
            for _ in range(40):
                c.sendall(b"x" * 8192)
                c.settimeout(0.05)
                try:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                    if b"\r\n\r\n" in got:
                        break
                except socket.timeout:
                    pass
            c.settimeout(5)
            while b"\r\n\r\n" not in got:
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        dt = time.time() - t0
        c.close()
        check(got.startswith(b"HTTP/1.1 413") and dt < 5, "huge chunk: %.1fs" % dt, got[:200])
        check(s.post("/embed", {"inputs": "after"})[0] == 200, "server fine after the huge chunk")

    # 2. the model file rewritten in place under a running server (cp
    # truncates first): no SIGBUS, the loaded model keeps answering the same
    tmp = tempfile.mkdtemp(prefix="ember-rel-")
    try:
        model = os.path.join(tmp, "m")
        shutil.copytree(bert, model)
        with Server(ember, model, "--threads", "1") as s:
            st, before = s.post("/embed", {"inputs": "the file changes"})
            check(st == 200, "embed before:", st)
            w = os.path.join(model, "model.safetensors")
            data = open(w, "rb").read()
            with open(w, "wb") as f:  # truncates, like cp
                f.write(data[:100])
            st, after = s.post("/embed", {"inputs": "the file changes"})
            check(st == 200 and after == before, "embed after the file was truncated:", st)
            with open(w, "wb") as f:
                f.write(data)
            check(s.proc.poll() is None, "server alive")

        # 4. a NaN weight: zero-copy loads it unscanned, and the answer is a
        # 500 naming the problem, never 200 with nulls; packed mode refuses it
        w = os.path.join(model, "model.safetensors")
        b = bytearray(open(w, "rb").read())
        n = struct.unpack("<Q", b[:8])[0]
        hdr = json.loads(b[8:8 + n])
        name = [k for k in hdr if k.endswith("word_embeddings.weight")][0]
        t = hdr[name]
        dim = t["shape"][1]
        tok = subprocess.run([ember, "tokenize", "-m", model, "zebra"], stdout=subprocess.PIPE, check=True)
        row = json.loads(tok.stdout)["ids"][1]  # a word the warm-up does not use
        off = 8 + n + t["data_offsets"][0] + 4 * (row * dim + 2)
        b[off:off + 4] = struct.pack("<f", float("nan"))
        open(w, "wb").write(b)
        with Server(ember, model, "--threads", "1", env={"EMBER_ZERO_COPY": "1"}) as s:
            st, h, data = s.request("POST", "/embed", {"inputs": "a zebra"})
            check(st == 500 and b"null" not in data and b"NaN" in data, "NaN weights:", st, data[:300])
        srv = subprocess.run([ember, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        check(srv.returncode != 0 and b"NaN" in srv.stderr, "packed load of NaN weights refused:",
              srv.stderr[-300:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def http_client_errors():
    import http.client
    return http.client.RemoteDisconnected


GROUPS = {"routes": test_routes, "errors": test_errors, "hostile": test_hostile,
          "concurrency": test_concurrency, "shutdown": test_shutdown,
          "reliability": test_reliability}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in GROUPS:
        sys.exit("usage: test_server.py {%s} EMBER GOLDENS_DIR" % ",".join(GROUPS))
    t0 = time.time()
    GROUPS[sys.argv[1]](sys.argv[2], sys.argv[3])
    print("%s: %.1fs" % (sys.argv[1], time.time() - t0))
