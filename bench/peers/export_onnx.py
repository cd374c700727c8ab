"""Export a model directory written by bench/make_model (a sentence-transformers
directory: transformer + pooling + normalize) to ONNX with its pooling inside:
inputs input_ids, attention_mask (int64, dynamic batch and sequence), output
`embedding`. With --plain, the transformer alone (no pooling, no normalization):
output `last_hidden_state` (batch, seq, hidden), for runtimes that pool
themselves (fastembed). Runs under a Python with torch + sentence-transformers
(the reference venv, used read-only):

    /tmp/refvenv/bin/python export_onnx.py MODEL_DIR OUT.onnx [--plain]
"""
import sys

import torch
from sentence_transformers import SentenceTransformer

src, out = sys.argv[1], sys.argv[2]
plain = "--plain" in sys.argv[3:]
st = SentenceTransformer(src, device="cpu")
st.eval()


class Wrapped(torch.nn.Module):
    def __init__(self, st):
        super().__init__()
        self.st = st

    def forward(self, input_ids, attention_mask):
        f = {"input_ids": input_ids, "attention_mask": attention_mask}
        if plain:  # the Transformer module only: token embeddings
            return self.st[0](f)["token_embeddings"]
        return self.st(f)["sentence_embedding"]


m = Wrapped(st).eval()
oname = "last_hidden_state" if plain else "embedding"
ids = torch.randint(1000, 30000, (2, 16))
am = torch.ones(2, 16, dtype=torch.long)
with torch.inference_mode():
    torch.onnx.export(m, (ids, am), out, input_names=["input_ids", "attention_mask"],
                      output_names=[oname],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "attention_mask": {0: "batch", 1: "seq"},
                                    oname: {0: "batch", 1: "seq"} if plain else {0: "batch"}},
                      opset_version=17, do_constant_folding=True, dynamo=False)
print("exported", out)
