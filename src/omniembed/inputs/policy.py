"""What an input may refer to and how much it may decode to, for the caller at hand.

Local callers of the Python API keep every convenience: paths, URLs, Pillow's own pixel limit. A server
runs each remote request under :func:`using` with a remote policy, where **remote input is data, never a
reference**: a string is text, no file is read and no URL is fetched unless the operator allowed a
folder or hosts, decoders check their limits before they allocate, and error messages do not tell
whether a path exists or what a remote host answered.

>>> policy = InputPolicy.for_remote_callers()
>>> policy.refers_to_files, policy.fetches_urls
(False, False)
>>> with using(policy):
...     current().remote
True
>>> current().remote
False
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from omniembed.errors import InvalidInputError

IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"})
"""Pillow formats a remote caller may send."""
AUDIO_FORMATS = frozenset({"WAV", "WAVEX", "FLAC", "OGG", "MP3", "AIFF"})
"""libsndfile formats a remote caller may send."""
REMOTE_IMAGE_PIXELS = 4096 * 4096
REMOTE_REQUEST_PIXELS = 4 * REMOTE_IMAGE_PIXELS
REMOTE_AUDIO_SECONDS = 120.0
REMOTE_VIDEO_FRAMES = 1800
REMOTE_HINT = (
    "this server reads no files and fetches no URLs for remote callers unless its operator allows them"
)
AUDIO_SAMPLES_PER_SECOND = 96_000
"""Decoded samples allowed per second of audio (two channels at 48 kHz): bounds memory, whatever the rate."""


@dataclass(frozen=True)
class InputPolicy:
    """Where inputs may point and how large they may decode.

    Attributes:
        remote: the inputs come from a remote caller: strings are text unless they name an allowed file
            or URL, and errors say nothing about the server's files or other hosts.
        refers_to_files: strings and paths may name files on this machine.
        file_root: with ``refers_to_files``, only files inside this folder (``None``: anywhere).
        fetches_urls: http(s) URLs may be fetched.
        url_hosts: with ``fetches_urls``, only these host names (``None``: any host).
        url_timeout: seconds to wait for a URL.
        max_url_bytes: the largest download accepted for one URL.
        max_image_pixels: pixels in one image (``None``: Pillow's ``MAX_IMAGE_PIXELS``).
        max_request_pixels: pixels decoded in one request, all images together (``None``: no limit).
        image_formats: Pillow formats accepted (``None``: every format Pillow reads).
        audio_formats: libsndfile formats accepted (``None``: every one).
        max_audio_seconds: seconds in one audio input (``None``: no limit).
        max_video_frames: frames in one video (``None``: no limit).
    """

    remote: bool = False
    refers_to_files: bool = True
    file_root: Path | None = None
    fetches_urls: bool = True
    url_hosts: frozenset[str] | None = None
    url_timeout: float = 30.0
    max_url_bytes: int = 64 * 2**20
    max_image_pixels: int | None = None
    max_request_pixels: int | None = None
    image_formats: frozenset[str] | None = None
    audio_formats: frozenset[str] | None = None
    max_audio_seconds: float | None = None
    max_video_frames: int | None = None

    @classmethod
    def for_remote_callers(
        cls,
        *,
        file_root: str | os.PathLike[str] | None = None,
        url_hosts: frozenset[str] | None = None,
        url_timeout: float = 5.0,
        max_url_bytes: int = 16 * 2**20,
        max_image_pixels: int = REMOTE_IMAGE_PIXELS,
        max_request_pixels: int = REMOTE_REQUEST_PIXELS,
        max_audio_seconds: float = REMOTE_AUDIO_SECONDS,
        max_video_frames: int = REMOTE_VIDEO_FRAMES,
    ) -> InputPolicy:
        """A remote caller's policy: files only under ``file_root`` and URLs only to ``url_hosts``
        (neither by default), with the decoding limits given."""
        return cls(
            remote=True,
            refers_to_files=file_root is not None,
            file_root=Path(file_root).resolve() if file_root is not None else None,
            fetches_urls=bool(url_hosts),
            url_hosts=frozenset(host.lower() for host in url_hosts) if url_hosts else None,
            url_timeout=url_timeout,
            max_url_bytes=max_url_bytes,
            max_image_pixels=max_image_pixels,
            max_request_pixels=max_request_pixels,
            image_formats=IMAGE_FORMATS,
            audio_formats=AUDIO_FORMATS,
            max_audio_seconds=max_audio_seconds,
            max_video_frames=max_video_frames,
        )

    def allows_file(self, value: str | os.PathLike[str]) -> bool:
        """Whether ``value`` names a file this policy lets inputs read (an existing regular file, inside
        ``file_root`` after resolving links)."""
        return self._allowed_file(value) is not None

    def local_file(self, value: str | os.PathLike[str], kind: str, where: str) -> Path:
        """The file ``value`` names, resolved (the path that was checked is the one read), or
        ``InvalidInputError`` naming the ``kind`` of input and ``where`` it is (``"input at index 3"``);
        remote callers learn nothing about which paths exist."""
        path = self._allowed_file(value)
        if path is not None:
            return path
        if self.remote:
            raise InvalidInputError(
                f"{kind} ({where}): send the file's bytes as base64 or a data URL ({REMOTE_HINT})"
            )
        raise InvalidInputError(f"{kind} file {os.fspath(value)!r} ({where}) does not exist; check the path")

    def _allowed_file(self, value: str | os.PathLike[str]) -> Path | None:
        if not self.refers_to_files:
            return None
        try:
            path = Path(value).resolve()
        except (OSError, ValueError, RuntimeError):
            return None
        if self.file_root is not None and not path.is_relative_to(self.file_root):
            return None
        return path if path.is_file() else None

    def allows_url(self, value: str) -> bool:
        """Whether ``value`` is an http(s) URL this policy lets inputs fetch."""
        if not self.fetches_urls or not value.startswith(("http://", "https://")):
            return False
        host = urllib.parse.urlsplit(value).hostname
        return host is not None and (self.url_hosts is None or host.lower() in self.url_hosts)

    def check_pixels(self, size: tuple[int, int], what: str) -> None:
        """Refuse an image of ``size`` (width, height) over the per-image or the per-request limit,
        before it is decoded; count it against the request's budget otherwise."""
        pixels = size[0] * size[1]
        limit = self.max_image_pixels
        if limit is None:
            from PIL import Image

            limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and pixels > limit:
            raise InvalidInputError(
                f"{what} has {size[0]}x{size[1]} = {pixels} pixels; the limit is {limit} per image "
                "(send a smaller image)"
            )
        budget = _budget.get()
        if self.max_request_pixels is not None and budget is not None:
            budget.pixels += pixels
            if budget.pixels > self.max_request_pixels:
                raise InvalidInputError(
                    f"{what} brings the request to {budget.pixels} decoded pixels; the limit is "
                    f"{self.max_request_pixels} per request (send fewer or smaller images)"
                )


@dataclass
class _Budget:
    """What one request has decoded so far."""

    pixels: int = 0


LOCAL = InputPolicy()
"""The Python API's policy: paths, URLs and Pillow's pixel limit."""
_policy: ContextVar[InputPolicy] = ContextVar("omniembed_input_policy", default=LOCAL)
_budget: ContextVar[_Budget | None] = ContextVar("omniembed_input_budget", default=None)


def current() -> InputPolicy:
    """The policy of the code running now (:data:`LOCAL` unless inside :func:`using`)."""
    return _policy.get()


@contextmanager
def using(policy: InputPolicy) -> Iterator[InputPolicy]:
    """Run the body under ``policy``, with a fresh per-request pixel budget."""
    policy_token = _policy.set(policy)
    budget_token = _budget.set(_Budget())
    try:
        yield policy
    finally:
        _budget.reset(budget_token)
        _policy.reset(policy_token)
