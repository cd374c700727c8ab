"""Export a model directory written by bench/make_model (a sentence-transformers
directory: transformer + pooling + normalize) to ONNX with its pooling inside:
inputs input_ids, attention_mask (int64, dynamic batch and sequence), output
`embedding`. Runs under a Python with torch + sentence-transformers (the
reference venv, used read-only):

    /tmp/refvenv/bin/python export_onnx.py MODEL_DIR OUT.onnx
"""
import sys

import torch
from sentence_transformers import SentenceTransformer

src, out = sys.argv[1], sys.argv[2]
st = SentenceTransformer(src, device="cpu")
st.eval()


class Wrapped(torch.nn.Module):
    def __init__(self, st):
        super().__init__()
        self.st = st

    def forward(self, input_ids, attention_mask):
        return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]


m = Wrapped(st).eval()
ids = torch.randint(1000, 30000, (2, 16))
am = torch.ones(2, 16, dtype=torch.long)
with torch.inference_mode():
    torch.onnx.export(m, (ids, am), out, input_names=["input_ids", "attention_mask"],
                      output_names=["embedding"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "attention_mask": {0: "batch", 1: "seq"},
                                    "embedding": {0: "batch"}},
                      opset_version=17, do_constant_folding=True, dynamo=False)
print("exported", out)
