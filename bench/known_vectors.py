"""Embeddings known in advance, for bench/remember_overhead.py: a remember of a known text
takes its vector from a file instead of the model, so what is left is the write path alone
(what a remember acknowledged before its embedding could at best cost).

Patched into the bench process and into the ``memstore serve`` it starts (before the server
loads). Texts not in the file are embedded as usual.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

KNOWN_ENV = "REMEMBER_OVERHEAD_KNOWN"  # the .npz written by ``save``


def save(path: Path, texts: list[str], vectors: np.ndarray) -> None:
    np.savez(path, texts=np.array(json.dumps(texts)), vectors=vectors.astype(np.float32))


def use_known_vectors(path: str | None = None) -> None:
    """Make ``E5Embedder.embed_documents`` return the saved vectors of a batch whose texts
    are all in the file at ``path`` (default: ``$REMEMBER_OVERHEAD_KNOWN``); a later call
    replaces the file an earlier one patched in."""
    from memstore.embedding import E5Embedder

    with np.load(path or os.environ[KNOWN_ENV]) as saved:
        texts = json.loads(str(saved["texts"]))
        vectors = saved["vectors"]
    known = dict(zip(texts, vectors, strict=True))
    # the model's own method, however many files were patched in before this one
    inner = getattr(E5Embedder, "_model_embed_documents", E5Embedder.embed_documents)
    E5Embedder._model_embed_documents = inner  # type: ignore[attr-defined]

    def embed_documents(self: Any, batch: list[str]) -> np.ndarray:
        if batch and all(t in known for t in batch):
            return np.stack([known[t] for t in batch])
        return inner(self, batch)

    E5Embedder.embed_documents = embed_documents  # type: ignore[method-assign]
