"""The HTTP server: OpenAI-compatible embeddings, reranking, collections REST and a search page.

Needs the ``[server]`` extra (FastAPI, uvicorn, prometheus_client); without it, using
``create_app`` raises ``MissingExtraError`` naming the install command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from omniembed.errors import MissingExtraError
from omniembed.server.settings import ServerSettings

if TYPE_CHECKING:
    from omniembed.server.app import create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        try:
            for needed in ("fastapi", "uvicorn", "prometheus_client"):
                import_module(needed)
        except ImportError as error:
            raise MissingExtraError(
                f"the server needs {error.name}: pip install 'omniembed[server]'"
            ) from None
        return import_module("omniembed.server.app").create_app
    raise AttributeError(f"module 'omniembed.server' has no attribute {name!r}")
