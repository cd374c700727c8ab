#!/usr/bin/env python3
"""One long input (e.g. 32,768 tokens on a Qwen3-0.6B-shaped model) against
genuine transformers + sentence-transformers.

Eager attention would hold heads x L x L scores (68 GB at 32K with 16
heads), so the reference runs SDPA here: without padding transformers calls
torch's scaled_dot_product_attention with is_causal, whose CPU kernel is a
tiled flash attention in fp32 (bounded memory). Everything else is as in the
goldens: fp32 compute on the stored weights, the directory's own Pooling /
Dense / Normalize modules.

Usage (dev time, not CI; /tmp/refvenv):
    python scripts/check_long_input.py MODEL_DIR IDS_FILE EMBER_OUTPUT.jsonl [THREADS]
IDS_FILE: one line of token ids; EMBER_OUTPUT.jsonl: `ember embed --input-format
ids` of that file. Prints the cosine, the largest absolute difference and the
reference's time and peak RSS.
"""
import json
import resource
import sys
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    model_dir, ids_file, ember_out = sys.argv[1:4]
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    ids = [int(t) for t in open(ids_file).read().split()]
    mine = np.array(json.loads(open(ember_out).readline())["embedding"], dtype=np.float64)
    st = SentenceTransformer(model_dir, device="cpu",
                             model_kwargs={"attn_implementation": "sdpa", "dtype": torch.float32}).eval()
    st.max_seq_length = len(ids)
    t0 = time.time()
    with torch.inference_mode():
        x = torch.tensor([ids])
        ref = st({"input_ids": x, "attention_mask": torch.ones_like(x)})["sentence_embedding"][0]
    secs = time.time() - t0
    ref = ref.double().numpy()
    cos = float(mine @ ref / (np.linalg.norm(mine) * np.linalg.norm(ref)))
    print(json.dumps({"tokens": len(ids), "cosine": cos, "max_abs": float(np.abs(mine - ref).max()),
                      "reference_seconds": round(secs, 1), "threads": torch.get_num_threads(),
                      "reference_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "attn_implementation": st[0].auto_model.config._attn_implementation}))


if __name__ == "__main__":
    main()
