"""serverlib.py - helpers for the `ember serve` integration tests (python3
standard library only).

Server(binary, model, *args) starts `ember serve --port 0` on loopback, reads
the chosen port from its "listening on" line, and always kills it on exit
(context manager, plus atexit and SIGTERM/SIGINT handlers for the test
itself), so a failing test never leaves a server behind. Its stderr goes to
a temporary file that tests can read (request log lines).
"""
import atexit
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

_live = []


def _kill_all():
    for p in list(_live):
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_all)


def _on_signal(sig, frame):
    _kill_all()
    sys.exit(128 + sig)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


class Server:
    def __init__(self, binary, model, *args, env=None, start_timeout=60):
        self.log = tempfile.NamedTemporaryFile(prefix="ember-serve-", suffix=".log", delete=False)
        cmd = [binary, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0", *args]
        e = dict(os.environ)
        e.pop("EMBER_API_KEY", None)
        e["HF_HUB_OFFLINE"] = "1"
        if env:
            e.update(env)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=e)
        _live.append(self.proc)
        self.port = None
        deadline = time.time() + start_timeout
        while time.time() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %d:\n%s" % (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        if self.port is None:
            self.kill()
            raise RuntimeError("server did not start:\n" + self.stderr())

    def stderr(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc in _live:
            _live.remove(self.proc)
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def terminate(self, timeout=60):
        """SIGTERM, then the exit status (kills and fails after timeout)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("server did not exit within %ds of SIGTERM" % timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, headers dict, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if isinstance(body, (dict, list, str, int, float)) or body is None and method == "POST":
                body = json.dumps(body).encode()
                h.setdefault("Content-Type", "application/json")
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def post(self, path, obj, headers=None, timeout=60):
        status, h, data = self.request("POST", path, obj, headers, timeout)
        return status, json.loads(data) if data else None

    def get(self, path, headers=None):
        status, h, data = self.request("GET", path, None, headers)
        return status, h, data

    def raw(self, data, read=True, timeout=10):
        """Sends raw bytes on a new socket; returns what came back (until close or timeout)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            if not read:
                return b""
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def metrics(self):
        status, h, data = self.get("/metrics")
        assert status == 200, status
        values = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, v = line.rpartition(" ")
                values[name] = float(v)
        return values


def check(cond, *msg):
    if not cond:
        raise AssertionError(" ".join(str(m) for m in msg))


def cli_embed(binary, model, texts, *args):
    """`ember embed` over texts (JSON Lines input): list of vectors."""
    inp = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run([binary, "embed", "-m", model, "-f", "jsonl", *args], input=inp.encode(),
                         stdout=subprocess.PIPE, check=True, timeout=600).stdout
    rows = [json.loads(l) for l in out.decode().splitlines()]
    return [r["embedding"] for r in rows]


def f32(x):
    """Rounds a Python float to float32 (JSON floats printed with 9 digits are exact)."""
    import struct
    return struct.unpack("<f", struct.pack("<f", x))[0]


def max_diff(a, b):
    return max(abs(f32(x) - f32(y)) for x, y in zip(a, b))
