"""A LangChain-shaped embeddings adapter, without a dependency on LangChain.

`EmberEmbeddings` has the methods of ``langchain_core.embeddings.Embeddings``
(``embed_documents``, ``embed_query`` and their async forms), so it can be
passed wherever LangChain expects an embeddings object. When langchain-core
is installed the class also derives from its ``Embeddings`` base, so
``isinstance`` checks pass; otherwise it is a plain class.

>>> from ember.langchain import EmberEmbeddings
>>> emb = EmberEmbeddings("sentence-transformers/all-MiniLM-L6-v2")
>>> vectors = emb.embed_documents(["first document", "second document"])
>>> query = emb.embed_query("which document?")
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional

from . import Model

try:  # optional: only for isinstance() checks inside LangChain
    from langchain_core.embeddings import Embeddings as _Base  # type: ignore[import-not-found]
except Exception:  # noqa: BLE001 - any import failure means "not available"
    _Base = object  # type: ignore[assignment,misc]

__all__ = ["EmberEmbeddings"]


class EmberEmbeddings(_Base):  # type: ignore[misc,valid-type]
    """LangChain ``Embeddings`` backed by an `ember.Model`.

    Args:
        model_name: hub id or local directory, as `ember.Model`.
        model: an already loaded `ember.Model` to share (then `model_name`
            and `model_kwargs` are ignored).
        model_kwargs: keyword arguments for `ember.Model` (dtype, threads,
            cache_folder, ...).
        encode_kwargs: keyword arguments for every `Model.encode` call
            (batch_size, normalize_embeddings, ...).
        query_prompt_name / document_prompt_name: prompt names used for
            queries / documents; by default the model's "query" and
            "document" (or "passage") prompts when it has them.
    """

    def __init__(
        self,
        model_name: str = "BAAI/bge-small-en-v1.5",
        *,
        model: Optional[Model] = None,
        model_kwargs: Optional[dict] = None,
        encode_kwargs: Optional[dict] = None,
        query_prompt_name: Optional[str] = None,
        document_prompt_name: Optional[str] = None,
    ) -> None:
        self.model: Model = model if model is not None else Model(model_name,
                                                                   **(model_kwargs or {}))
        self.encode_kwargs: dict = dict(encode_kwargs or {})
        prompts = self.model.prompts
        if query_prompt_name is None and "query" in prompts:
            query_prompt_name = "query"
        if document_prompt_name is None:
            document_prompt_name = next((n for n in ("document", "passage") if n in prompts), None)
        self.query_prompt_name = query_prompt_name
        self.document_prompt_name = document_prompt_name

    def _encode(self, texts: List[str], prompt_name: Optional[str]) -> List[List[float]]:
        kw: dict[str, Any] = dict(self.encode_kwargs)
        if prompt_name is not None and "prompt" not in kw and "prompt_name" not in kw:
            kw["prompt_name"] = prompt_name
        return self.model.encode(list(texts), **kw).tolist()

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        """Embeds documents: one list of floats per text, in order."""
        return self._encode(texts, self.document_prompt_name)

    def embed_query(self, text: str) -> List[float]:
        """Embeds one query: a list of floats."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        return self._encode([text], self.query_prompt_name)[0]

    async def aembed_documents(self, texts: List[str]) -> List[List[float]]:
        """`embed_documents` in a worker thread (Ember releases the GIL)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> List[float]:
        """`embed_query` in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(None, self.embed_query, text)
