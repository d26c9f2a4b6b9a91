"""Ray itself: importing it with a helpful error, connecting, and turning its errors into clear ones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omniembed.errors import InvalidInputError, MissingExtraError, PoolWorkerError

# The last "SomeError: message" line of a worker's traceback is the cause Ray wraps.
_CAUSE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", re.MULTILINE)
_WRAPPERS = {"UserCodeException", "RayTaskError", "SystemException", "ActorDiedError", "RayActorError"}
_KINDS: dict[str, type[Exception]] = {
    "InvalidInputError": InvalidInputError,
    "PoolWorkerError": PoolWorkerError,
    "KeyError": KeyError,
    "ValueError": ValueError,
    "TypeError": TypeError,
}


def ray_module() -> Any:
    """``import ray``, or a ``MissingExtraError`` that names the extra."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingExtraError("distributed encoding needs Ray: pip install 'omniembed[ray]'") from None
    return ray


def connect(address: str | None = None, **options: Any) -> bool:
    """Connect to the Ray cluster at ``address`` (``"auto"``, ``"local"``, ``"host:port"``, ``ray://...``).

    Returns whether this call started the connection (``False`` when this process already had one).
    A driver of a cluster on a loopback address (``127.0.0.2:6379``) takes that address as its own.
    ``options`` go to ``ray.init``.
    """
    ray = ray_module()
    if ray.is_initialized():
        return False
    settings: dict[str, Any] = {"include_dashboard": False, **options}
    host = (address or "").removeprefix("ray://").rsplit(":", 1)[0]
    if host.startswith("127."):
        settings.setdefault("_node_ip_address", host)
    ray.init(address=address, **settings)
    return True


@contextmanager
def session(address: str | None = None, **options: Any) -> Iterator[None]:
    """Run the block connected to Ray (see :func:`connect`); disconnect after if it connected."""
    started = connect(address, **options)
    try:
        with clear_errors():
            yield
    finally:
        if started:
            ray_module().shutdown()


@contextmanager
def clear_errors() -> Iterator[None]:
    """Re-raise a Ray error from a worker as the error the worker raised, with its message only."""
    ray = ray_module()
    try:
        yield
    except ray.exceptions.RayError as error:
        raise worker_error(error) from None


def worker_error(error: BaseException) -> Exception:
    """The error a worker raised, rebuilt from the traceback text Ray wraps it in (its kind kept where
    it is ours or built-in); Ray's own wrappers are looked through."""
    text = _strip_colors("\n".join(_texts(error)))
    found = [(kind, message) for kind, message in _CAUSE.findall(text) if kind not in _WRAPPERS]
    if not found:
        first = text.splitlines()[0] if text else type(error).__name__
        return PoolWorkerError(f"a Ray worker failed: {first}")
    kind, message = found[-1]
    if kind == "KeyError":
        message = message.strip("\"'")
    return _KINDS.get(kind, PoolWorkerError)(message)


def _texts(error: BaseException) -> list[str]:
    """The messages of ``error`` and of every error it was caused by."""
    texts, pending, seen = [], [error], set()
    while pending:
        current = pending.pop()
        if id(current) not in seen:
            seen.add(id(current))
            texts.append(str(current))
            pending.extend(c for c in (current.__cause__, getattr(current, "cause", None)) if c is not None)
    return texts


def _strip_colors(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
