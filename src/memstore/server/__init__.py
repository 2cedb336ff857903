"""The HTTP API: a thin FastAPI layer over MemoryEngine."""

from memstore.server.app import create_app

__all__ = ["create_app"]
