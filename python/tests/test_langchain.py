"""The LangChain-shaped adapter, without LangChain installed."""
from __future__ import annotations

import asyncio

import numpy as np

import ember
from conftest import GOLDENS
from ember.langchain import EmberEmbeddings


def test_embed_documents_and_query(tiny: ember.Model) -> None:
    emb = EmberEmbeddings(model=tiny)
    docs = emb.embed_documents(["first document", "second document"])
    assert isinstance(docs, list) and len(docs) == 2 and len(docs[0]) == 32
    assert all(isinstance(x, float) for x in docs[0])
    np.testing.assert_allclose(docs, tiny.encode(["first document", "second document"]), atol=1e-6)
    q = emb.embed_query("which document?")
    np.testing.assert_allclose(q, tiny.encode("which document?"), atol=1e-6)
    assert emb.embed_documents([]) == []
    assert asyncio.run(emb.aembed_query("which document?")) == q
    assert asyncio.run(emb.aembed_documents(["first document"]))[0] == docs[0]


def test_prompts_used() -> None:
    emb = EmberEmbeddings(str(GOLDENS / "e2e-modernbert"), model_kwargs={"threads": 1})
    assert emb.query_prompt_name == "query" and emb.document_prompt_name == "document"
    m = emb.model
    np.testing.assert_allclose(emb.embed_query("fox"), m.encode("fox", prompt_name="query"),
                               atol=1e-6)
    np.testing.assert_allclose(emb.embed_documents(["fox"])[0],
                               m.encode("fox", prompt_name="document"), atol=1e-6)
