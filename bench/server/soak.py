#!/usr/bin/env python3
"""soak.py — `ember serve` under mixed valid, hostile and slow clients on
127.0.0.1 for a bounded time (not run by CI).

Every interval it reports requests/s and p99 latency of the valid clients,
errors (a valid request not answered 200, or answered with a vector that is
not what `ember embed` computes for the same text), hostile/slow requests
sent, the server's RSS and, with nvidia-smi present, the GPU memory the
server holds. Exit status 1 when any valid answer was wrong, or when the
server's RSS or GPU memory grew by more than --max-growth-mb from the end of
the first interval to the end of the run (after warm-up a server holds what
its largest pass needs and no more).

On a GPU (`--device cuda`) a text is batched with others and the products
pick other algorithms for other shapes, so answers are compared by cosine
(`--min-cosine`, e.g. 0.9999) instead of to 1e-6.

usage: soak.py EMBER MODEL_DIR [--seconds 600] [--interval 10]
               [--valid 4] [--hostile 2] [--slow 8] [--device D]
               [--min-cosine C] [--max-growth-mb 64]
e.g. a 10-minute soak on a GPU:
  python3 bench/server/soak.py build-gpu/ember MODEL --device cuda --min-cosine 0.9999
"""
import argparse, json, math, os, random, re, shutil, socket, subprocess, sys, threading, time
import http.client

TEXTS = ["the quick brown fox", "Ember embeds sentences", "naïve café in München",
         "東京は日本の首都です", "a" * 300, "numbers 1 2 3 4 5 6 7 8 9", "short",
         "A longer sentence about reliability, deadlines, and request smuggling. " * 8]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def gpu_mb(pid):
    """MiB of GPU memory the process holds (nvidia-smi), or None."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=20).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = [x.strip() for x in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
            return int(parts[1])
    return None


def same_vector(got, want, min_cosine):
    if len(got) != len(want):
        return False
    if min_cosine is None:
        return all(abs(x - y) <= 1e-6 for x, y in zip(got, want))
    dot = sum(x * y for x, y in zip(got, want))
    norm = math.sqrt(sum(x * x for x in got) * sum(y * y for y in want))
    return norm > 0 and dot / norm >= min_cosine


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ember")
    ap.add_argument("model")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--valid", type=int, default=4)
    ap.add_argument("--hostile", type=int, default=2)
    ap.add_argument("--slow", type=int, default=8)
    ap.add_argument("--device", default=None, help="passed to ember serve and ember embed")
    ap.add_argument("--min-cosine", type=float, default=None)
    ap.add_argument("--max-growth-mb", type=float, default=64)
    a = ap.parse_args()
    device = ["--device", a.device] if a.device else []

    # the reference: `ember embed` over the same texts (JSON Lines in order)
    ref = subprocess.run([a.ember, "embed", "-m", a.model, "-f", "jsonl"] + device,
                         input="".join(json.dumps({"text": t}) + "\n" for t in TEXTS).encode(),
                         stdout=subprocess.PIPE, check=True).stdout.decode().splitlines()
    ref = [json.loads(l)["embedding"] for l in ref]

    log = open("/tmp/ember-soak-%d.log" % os.getpid(), "w+")
    srv = subprocess.Popen([a.ember, "serve", "-m", a.model, "--host", "127.0.0.1", "--port", "0",
                            "--max-connections", "64", "--idle-timeout", "5", "--request-timeout", "5",
                            "--max-body-bytes", "200000", "--quiet"] + device, stderr=log,
                           stdout=subprocess.DEVNULL)
    port = None
    for _ in range(600):
        log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.05)
    if not port:
        srv.kill()
        sys.exit("server did not start")

    stop = time.time() + a.seconds
    lock = threading.Lock()
    st = {"lat": [], "ok": 0, "errors": 0, "wrong": 0, "hostile": 0, "slow": 0}

    def valid():
        rnd = random.Random()
        while time.time() < stop:
            i = rnd.randrange(len(TEXTS))
            t0 = time.time()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("POST", "/embed", json.dumps({"inputs": TEXTS[i]}),
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                body = r.read()
                c.close()
                good = r.status == 200
                same = good and same_vector(json.loads(body)[0], ref[i], a.min_cosine)
            except OSError:
                good = same = False
            with lock:
                st["lat"].append(time.time() - t0)
                if not good:
                    st["errors"] += 1
                elif not same:
                    st["wrong"] += 1
                else:
                    st["ok"] += 1

    HOSTILE = [
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello",
        b"POST /embed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\n" + b"x" * 300000,
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"\x00\xff garbage \r\n\r\n",
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"inputs\":[",
    ]

    def hostile():
        rnd = random.Random()
        while time.time() < stop:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(rnd.choice(HOSTILE))
                s.settimeout(5)
                s.recv(4096)
                s.close()
            except OSError:
                pass
            with lock:
                st["hostile"] += 1

    def slow():
        while time.time() < stop:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
                while time.time() < stop:
                    s.sendall(b"a")
                    time.sleep(1)
            except OSError:
                pass
            with lock:
                st["slow"] += 1

    threads = [threading.Thread(target=f, daemon=True)
               for f, n in ((valid, a.valid), (hostile, a.hostile), (slow, a.slow)) for _ in range(n)]
    for t in threads:
        t.start()
    t_start = time.time()
    print("%6s %8s %8s %6s %6s %8s %6s %8s %8s" % ("t(s)", "req/s", "p99(ms)", "errors", "wrong",
                                                   "hostile", "slow", "RSS(MB)", "GPU(MB)"))
    worst_wrong = 0
    samples = []  # (RSS MB, GPU MB or None) at the end of each interval
    while time.time() < stop:
        time.sleep(min(a.interval, max(0.1, stop - time.time())))
        with lock:
            lat = sorted(st["lat"])
            row = dict(st)
            st.update(lat=[], ok=0, errors=0, wrong=0, hostile=0, slow=0)
        n = row["ok"] + row["errors"] + row["wrong"]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3 if lat else 0
        worst_wrong += row["wrong"] + row["errors"]
        rss, gpu = rss_kb(srv.pid) / 1024, gpu_mb(srv.pid)
        samples.append((rss, gpu))
        print("%6.0f %8.1f %8.1f %6d %6d %8d %6d %8.1f %8s" % (time.time() - t_start, n / a.interval, p99,
              row["errors"], row["wrong"], row["hostile"], row["slow"], rss,
              "-" if gpu is None else gpu), flush=True)
    alive = srv.poll() is None
    srv.terminate()
    srv.wait(timeout=60)
    grew = []
    if len(samples) >= 2:
        for k, name in ((0, "RSS"), (1, "GPU memory")):
            first, last = samples[0][k], samples[-1][k]
            if first is not None and last is not None:
                print("%s: %.1f MB after the first interval, %.1f MB at the end (%+.1f)" %
                      (name, first, last, last - first))
                if last - first > a.max_growth_mb:
                    grew.append(name)
    print("server %s; valid requests failed or wrong: %d; grew beyond %.0f MB: %s" %
          ("alive" if alive else "DIED", worst_wrong, a.max_growth_mb, ", ".join(grew) or "nothing"))
    sys.exit(0 if alive and worst_wrong == 0 and not grew else 1)


if __name__ == "__main__":
    main()
