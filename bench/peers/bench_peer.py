"""Time one peer on one regime of the fixed workload (bench/workloads):

    python bench_peer.py ort MODEL.onnx REGIME_FILE REPS [BATCH]
    python bench_peer.py st  MODEL_DIR  REGIME_FILE REPS [BATCH]

ort: ONNX Runtime CPU, graph optimization 'all', 2 intra-op threads.
st:  sentence-transformers on PyTorch (2 threads), the model's own modules
     (transformer, pooling, normalize) called on token ids; in fp32 (ST_DTYPE=float32,
     the default, whatever the checkpoint's dtype) or bf16 (ST_DTYPE=bfloat16: weights and
     activations, as a bf16 checkpoint loads by default in transformers 5).
Both pad each batch of BATCH (32) consecutive sequences to its longest and
time REPS full passes after one warm-up batch (tokenization is not timed).
Prints one JSON line: real tokens, the best and median pass, peak RSS."""
import json
import os
import resource
import statistics
import sys
import time

kind, model, path, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
bs = int(sys.argv[5]) if len(sys.argv) > 5 else 32
threads = int(os.environ.get("THREADS", "2"))
seqs = [[int(t) for t in line.split()] for line in open(path) if line.strip()]
batches = [seqs[i:i + bs] for i in range(0, len(seqs), bs)]
real = sum(len(s) for s in seqs)

if kind == "ort":
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feeds = []
    for b in batches:
        L = max(len(s) for s in b)
        ids = np.zeros((len(b), L), dtype=np.int64)
        am = np.zeros((len(b), L), dtype=np.int64)
        for r, s in enumerate(b):
            ids[r, :len(s)] = s
            am[r, :len(s)] = 1
        feeds.append({"input_ids": ids, "attention_mask": am})
    run = lambda f: sess.run(None, f)
    version = "onnxruntime " + ort.__version__
else:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[os.environ.get("ST_DTYPE", "float32")]
    st = SentenceTransformer(model, device="cpu", model_kwargs={"dtype": dtype}).eval()
    st.to(dtype)  # the Dense modules too
    feeds = []
    for b in batches:
        L = max(len(s) for s in b)
        ids = torch.zeros(len(b), L, dtype=torch.long)
        am = torch.zeros(len(b), L, dtype=torch.long)
        for r, s in enumerate(b):
            ids[r, :len(s)] = torch.tensor(s)
            am[r, :len(s)] = 1
        feeds.append({"input_ids": ids, "attention_mask": am})

    def run(f):
        with torch.inference_mode():
            return st(dict(f))["sentence_embedding"]

    import sentence_transformers
    version = (f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, "
               f"{str(dtype).replace('torch.', '')}")

run(feeds[0])  # warm-up
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    for f in feeds:
        run(f)
    times.append(time.perf_counter() - t0)
print(json.dumps({"kind": kind, "model": model, "regime": os.path.basename(path), "seqs": len(seqs),
                  "tokens": real, "times": times, "min": min(times), "median": statistics.median(times),
                  "version": version,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
