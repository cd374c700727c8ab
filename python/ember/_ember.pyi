"""Type stub of the C extension ember._ember (see _ember.c)."""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

def version() -> str: ...
def cpu_features() -> str: ...

class Model:
    """A loaded Ember model (low level; use ember.Model)."""

    dim: int
    max_tokens: int
    normalize: bool
    n_contexts: int
    num_labels: int

    def __init__(
        self,
        path: str,
        driver: Optional[str] = ...,
        dtype: int = ...,
        threads: int = ...,
        max_seq_length: int = ...,
        revision: Optional[str] = ...,
        allow_download: bool = ...,
    ) -> None: ...
    def info(self) -> Dict[str, Any]: ...
    def prompts(self) -> Dict[str, str]: ...
    def default_prompt_name(self) -> Optional[str]: ...
    def embed_texts(
        self,
        texts: Sequence[str],
        out: Any,
        normalize: int = ...,
        dimensions: int = ...,
        prompt: Optional[str] = ...,
        truncate: bool = ...,
        truncation_side: int = ...,
        batch_size: int = ...,
        progress: Optional[Callable[[int], object]] = ...,
    ) -> Tuple[int, int, int, int]: ...
    def embed_tokens(
        self, ids: Sequence[Sequence[int]], out: Any, normalize: int = ..., dimensions: int = ...
    ) -> Tuple[int, int, int, int]: ...
    def tokenize(
        self,
        texts: Sequence[str],
        prompt: Optional[str] = ...,
        truncate: bool = ...,
        truncation_side: int = ...,
    ) -> List[List[int]]: ...
    def id_to_token(self, token_id: int) -> Optional[str]: ...
    def rerank(
        self, query: str, texts: Sequence[str], out: Any, raw_scores: bool = ..., truncate: bool = ...
    ) -> Tuple[int, int, int, int]: ...
