"""The HTTP server: OpenAI-compatible embeddings, reranking, collections REST and a search page.

Needs the ``[server]`` extra (FastAPI, uvicorn, prometheus_client).
"""

from __future__ import annotations

from omniembed.server.app import create_app
from omniembed.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
