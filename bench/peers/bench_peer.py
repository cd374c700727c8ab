"""Time one peer on one regime of the fixed workload (bench/workloads):

    python bench_peer.py ort       MODEL.onnx     REGIME_FILE REPS [BATCH]
    python bench_peer.py st        MODEL_DIR      REGIME_FILE REPS [BATCH]
    python bench_peer.py fastembed FASTEMBED_DIR  REGIME_FILE REPS [BATCH]
    python bench_peer.py llama     MODEL.gguf     REGIME_FILE REPS [BATCH]

ort: ONNX Runtime CPU, graph optimization 'all', 2 intra-op threads.
st:  sentence-transformers on PyTorch (2 threads), the model's own modules
     (transformer, pooling, normalize) called on token ids; in fp32 (ST_DTYPE=float32,
     the default, whatever the checkpoint's dtype) or bf16 (ST_DTYPE=bfloat16: weights and
     activations, as a bf16 checkpoint loads by default in transformers 5).
fastembed: fastembed's TextEmbedding with the model registered as a custom model
     (add_custom_model: the pooling of the model dir's 1_Pooling, CLS or MEAN, and L2
     normalization when modules.json has a Normalize module) and loaded from
     FASTEMBED_DIR (specific_model_path): a plain ONNX export, model.onnx, whose output is
     last_hidden_state (export_onnx.py --plain), beside the model's tokenizer files.
     fastembed's session is its own (ONNX Runtime, optimization 'all', THREADS intra-
     and inter-op threads) and so are pooling and normalization, in numpy. The workload
     is token ids, fastembed takes text: rather than decode the ids to text and time
     fastembed's tokenizer (which no other engine here is timed with), the instance's
     tokenize() is replaced by one that hands back the pre-padded batch (objects with
     .ids and .attention_mask, as tokenizers' Encoding has), so embed(batch,
     batch_size=BATCH) runs all of fastembed's own path from there on: onnx_embed
     (numpy input arrays, session.run) and _post_process_onnx_output (pooling, normalize).
llama: llama.cpp through llama-cpp-python (llama_cpp.Llama(embedding=True), THREADS
     threads, pooling from the GGUF, flash attention off as Llama's default), fed token ids
     with the low-level batch API the way Llama.embed does: several sequences per
     llama_decode, one seq_id each, llama_get_embeddings_seq per sequence, L2-normalized in
     numpy. llama.cpp packs the sequences of a decode (no padding), but its attention for a
     non-causal model spans the whole ubatch (masked), so each batch of BATCH sequences is
     cut into decodes of at most LLAMA_PACK tokens (default 64: the best of 32/64/128/256/512
     on models A and B, short and code, on a quiet 2-vCPU Xeon; a longer sequence goes alone;
     n_ctx = n_batch = n_ubatch = LLAMA_NBATCH, 512, the longest sequence here), a sequence
     never split. Flash attention: LLAMA_FLASH_ATTN=1
     (off by default, as in Llama(); on this 2-vCPU Xeon it was 2-100x slower here).
     LLAMA_EXTRA_BUFTS=1: llama.cpp's extra weight buffers (AMX, repack), off by default.
All pad each batch of BATCH (32) consecutive sequences to its longest (llama.cpp packs)
and time REPS full passes after one warm-up batch (tokenization is not timed).
Prints one JSON line: real tokens, the best and median pass, peak RSS.

    python bench_peer.py check KIND MODEL REGIME_FILE REF.onnx [N]

embeds the first N (8) sequences of the regime, as one batch, with KIND (fastembed or
llama) and with ONNX Runtime on REF.onnx (the pooled fp32 export, the ort peer) and
prints one JSON line with the smallest and mean cosine between the two."""
import json
import os
import resource
import statistics
import sys
import time

threads = int(os.environ.get("THREADS", "2"))


def padded(b, np):
    L = max(len(s) for s in b)
    ids = np.zeros((len(b), L), dtype=np.int64)
    am = np.zeros((len(b), L), dtype=np.int64)
    for r, s in enumerate(b):
        ids[r, :len(s)] = s
        am[r, :len(s)] = 1
    return ids, am


def setup_ort(model):
    """(prepare(batch) -> feed, run(feed) -> vectors, version)"""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])

    def prepare(b):
        ids, am = padded(b, np)
        return {"input_ids": ids, "attention_mask": am}

    return prepare, lambda f: sess.run(None, f)[0], "onnxruntime " + ort.__version__


def setup_st(model):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[os.environ.get("ST_DTYPE", "float32")]
    st = SentenceTransformer(model, device="cpu", model_kwargs={"dtype": dtype}).eval()
    st.to(dtype)  # the Dense modules too

    def prepare(b):
        ids = torch.zeros(len(b), max(len(s) for s in b), dtype=torch.long)
        am = torch.zeros_like(ids)
        for r, s in enumerate(b):
            ids[r, :len(s)] = torch.tensor(s)
            am[r, :len(s)] = 1
        return {"input_ids": ids, "attention_mask": am}

    def run(f):
        with torch.inference_mode():
            return st(dict(f))["sentence_embedding"]

    import sentence_transformers
    return prepare, run, (f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, "
                          f"{str(dtype).replace('torch.', '')}")


def setup_fastembed(model):
    import numpy as np
    import fastembed
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    pool = json.load(open(os.path.join(model, "1_Pooling", "config.json")))
    pooling = (PoolingType.CLS if pool.get("pooling_mode_cls_token") else
               PoolingType.MEAN if pool.get("pooling_mode_mean_tokens") else None)
    if pooling is None:
        sys.exit(f"fastembed peer: {model}: pooling other than CLS or mean")
    normalize = any(m["type"].endswith("Normalize") for m in json.load(open(os.path.join(model, "modules.json"))))
    name = "ember-bench/" + os.path.basename(os.path.abspath(model))
    TextEmbedding.add_custom_model(model=name, pooling=pooling, normalization=normalize,
                                   sources=ModelSource(hf=name), dim=pool["word_embedding_dimension"],
                                   model_file="model.onnx", output_name="last_hidden_state")
    te = TextEmbedding(name, specific_model_path=model, threads=threads, cuda=False, local_files_only=True)

    class Enc:  # what fastembed reads of a tokenizers.Encoding
        __slots__ = ("ids", "attention_mask")

        def __init__(self, ids, am):
            self.ids, self.attention_mask = ids, am

    te.model.tokenize = lambda docs, **kw: docs  # the batch is already token ids, padded

    def prepare(b):
        ids, am = padded(b, np)
        return [Enc(i, a) for i, a in zip(ids, am)]

    def run(f):
        return np.stack(list(te.embed(f, batch_size=len(f))))

    return prepare, run, f"fastembed {fastembed.__version__}, {pooling.value} pooling, normalize {normalize}"


def setup_llama(model):
    import ctypes

    import numpy as np
    import llama_cpp

    nb = int(os.environ.get("LLAMA_NBATCH", "512"))
    # LLAMA_KV_OVERRIDES="key=float:1e-05,...": llama.cpp's --override-kv, for a key the converter
    # left out (this version's convert_hf_to_gguf.py writes ModernBERT's norm_eps as an RMS-norm
    # epsilon, its loader wants modern-bert.attention.layer_norm_epsilon)
    kv = {}
    for item in filter(None, os.environ.get("LLAMA_KV_OVERRIDES", "").split(",")):
        k, v = item.split("=", 1)
        t, v = v.split(":", 1)
        kv[k] = {"float": float, "int": int, "bool": lambda x: x == "true", "str": str}[t](v)
    # LLAMA_EXTRA_BUFTS=0 (default): no extra weight buffer types (llama.cpp's --no-repack). In this
    # build (llama-cpp-python 0.3.36, GGML_NATIVE) q8_0 weights go to the AMX buffer and
    # ggml_backend_amx_mul_mat segfaults on the first decode on this Xeon; 1 tries them.
    extra = os.environ.get("LLAMA_EXTRA_BUFTS", "0") == "1"
    fa = os.environ.get("LLAMA_FLASH_ATTN", "0") == "1"  # Llama()'s default: off
    default_params = llama_cpp.llama_cpp.llama_model_default_params

    def model_params():
        p = default_params()
        p.use_extra_bufts = extra
        return p

    llama_cpp.llama_cpp.llama_model_default_params = model_params  # what Llama() reads
    try:
        llm = llama_cpp.Llama(model_path=model, embedding=True, n_threads=threads, n_threads_batch=threads,
                              n_ctx=nb, n_batch=nb, n_ubatch=nb, kv_overrides=kv or None, flash_attn=fa,
                              verbose=False)
    finally:
        llama_cpp.llama_cpp.llama_model_default_params = default_params
    ctx, batch, n_embd = llm._ctx, llm._batch, llm.n_embd()  # llm stays referenced (run): it owns both
    n_seq_max = llm.context_params.n_seq_max
    if llm.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:
        sys.exit(f"llama peer: {model} has no pooling")

    def decode(group, out):
        batch.reset()
        for i, s in enumerate(group):
            batch.add_sequence(s, i, True)  # every token an output, as Llama.embed does
        ctx.kv_cache_clear()
        ctx.decode(batch)
        for i in range(len(group)):
            ptr = llama_cpp.llama_get_embeddings_seq(ctx.ctx, i)
            out.append(np.ctypeslib.as_array(ptr, shape=(n_embd,)).copy())

    pack = int(os.environ.get("LLAMA_PACK", "64"))  # tokens per llama_decode, at most

    def prepare(b):  # cut the batch into decodes of at most pack tokens (a longer sequence alone)
        groups, g, t = [], [], 0
        for s in b:
            if len(s) > nb:
                sys.exit(f"llama peer: a sequence of {len(s)} tokens > LLAMA_NBATCH={nb}")
            if g and (t + len(s) > pack or len(g) >= n_seq_max):
                groups.append(g); g, t = [], 0
            g.append(s); t += len(s)
        return groups + [g]

    def run(groups, llm=llm):
        out = []
        for g in groups:
            decode(g, out)
        e = np.stack(out)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    return prepare, run, (f"llama-cpp-python {llama_cpp.__version__}, n_batch {nb}, pack {pack}, extra bufts {int(extra)}, flash attn {int(fa)}"
                          + (f", kv overrides {kv}" if kv else ""))


setups = {"ort": setup_ort, "st": setup_st, "fastembed": setup_fastembed, "llama": setup_llama}

if sys.argv[1] == "check":
    import numpy as np

    kind, model, path, ref = sys.argv[2:6]
    n = int(sys.argv[6]) if len(sys.argv) > 6 else 8
    seqs = [[int(t) for t in line.split()] for line in open(path) if line.strip()][:n]
    prepare, run, version = setups[kind](model)
    a = np.asarray(run(prepare(seqs)), dtype=np.float64)
    rprep, rrun, _ = setup_ort(ref)
    b = np.asarray(rrun(rprep(seqs)), dtype=np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(json.dumps({"kind": kind, "model": model, "ref": ref, "regime": os.path.basename(path), "seqs": len(seqs),
                      "cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
                      "norm_min": float(np.linalg.norm(a, axis=1).min()), "version": version}))
    sys.exit(0)

kind, model, path, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
bs = int(sys.argv[5]) if len(sys.argv) > 5 else 32
seqs = [[int(t) for t in line.split()] for line in open(path) if line.strip()]
batches = [seqs[i:i + bs] for i in range(0, len(seqs), bs)]
real = sum(len(s) for s in seqs)
prepare, run, version = setups[kind](model)
feeds = [prepare(b) for b in batches]

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
