#!/usr/bin/env python3
"""`ember serve` driven by real clients from PyPI, installed by
scripts/setup.sh into VENV: openai (embeddings.create), huggingface_hub's
InferenceClient (feature_extraction, sentence_similarity, and its TEI rerank
call when it has one) and LlamaIndex's TextEmbeddingsInference. Each must get what `ember embed` /
`ember rerank` give. Re-runs itself under VENV's python; exits 77 (skip)
when the venv or a client is missing.

Usage: test_clients.py VENV EMBER_BINARY GOLDENS_DIR
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    venv, binary, goldens = sys.argv[1:4]
    py = os.path.join(venv, "bin", "python")
    if os.environ.get("EMBER_IN_VENV") != "1":
        if not os.path.exists(py):
            print(f"skip: no venv at {venv} (run scripts/setup.sh)")
            sys.exit(77)
        env = dict(os.environ, EMBER_IN_VENV="1")
        sys.exit(subprocess.run([py, __file__, *sys.argv[1:]], env=env).returncode)
    try:
        import huggingface_hub
        import openai
    except ImportError as e:
        print(f"skip: {e} (run scripts/setup.sh)")
        sys.exit(77)
    sys.path.insert(0, HERE)
    from serverlib import Server, check, cli_embed, max_diff

    emb, rr = goldens + "/e2e-bert", goldens + "/rerank-bert"
    texts = ["Paris is the capital and most populous city of France.",
             "Berlin is the capital of Germany.", "The Seine flows through Paris."]
    want = cli_embed(binary, emb, texts)
    with Server(binary, emb) as s:
        base = f"http://127.0.0.1:{s.port}"
        oa = openai.OpenAI(base_url=base + "/v1", api_key="x")
        r = oa.embeddings.create(model="e2e-bert", input=texts)
        got = [d.embedding for d in r.data]
        check(max(max_diff(a, b) for a, b in zip(got, want)) < 1e-6, "openai")
        hf = huggingface_hub.InferenceClient(base_url=base)
        fe = hf.feature_extraction(texts[0])
        check(max_diff(list(fe.reshape(-1)), want[0]) < 1e-6, "feature_extraction")
        sim = hf.sentence_similarity(texts[0], other_sentences=texts)
        dots = [sum(x * y for x, y in zip(want[0], v)) for v in want]
        check(max(abs(a - b) for a, b in zip(sim, dots)) < 1e-5, "sentence_similarity", sim, dots)
        # the framework integration: LlamaIndex's TEI embeddings (the
        # langchain-huggingface release on PyPI now refuses endpoint URLs)
        from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference
        li = TextEmbeddingsInference(model_name="e2e-bert", base_url=base, embed_batch_size=2)
        got = li.get_text_embedding_batch(texts)
        check(max(max_diff(a, b) for a, b in zip(got, want)) < 1e-6, "llama-index batch")
        check(max_diff(li.get_query_embedding(texts[1]), want[1]) < 1e-6, "llama-index query")
    q = "what is the capital of france?"
    out = subprocess.run([binary, "rerank", "-m", rr, q, *texts], stdout=subprocess.PIPE,
                         check=True).stdout.decode().splitlines()
    cli = [json.loads(l) for l in out]
    with Server(binary, rr) as s:
        hf = huggingface_hub.InferenceClient(base_url=f"http://127.0.0.1:{s.port}")
        # text_classification of a pair is how huggingface_hub reaches a TEI
        # reranker; fall back to a raw POST /rerank through its session
        resp = hf.post(json={"query": q, "texts": texts}, model=f"http://127.0.0.1:{s.port}/rerank") \
            if hasattr(hf, "post") else None
        if resp is None:
            import requests
            resp = requests.post(f"http://127.0.0.1:{s.port}/rerank",
                                 json={"query": q, "texts": texts}).content
        got = json.loads(resp)
        check([g["index"] for g in got] == [c["index"] for c in cli]
              and max(abs(g["score"] - c["score"]) for g, c in zip(got, cli)) < 1e-6, got, cli)
    print("test_clients: ok")


if __name__ == "__main__":
    main()
