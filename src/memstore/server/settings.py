"""The server's settings are memstore's settings (``memstore.settings``)."""

from memstore.settings import Settings

__all__ = ["Settings"]
