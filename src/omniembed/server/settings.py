"""What an operator can tune about the server: limits, keys, batching and CORS."""

from __future__ import annotations

from dataclasses import dataclass

from omniembed.inputs import policy as input_policy
from omniembed.inputs.policy import InputPolicy

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class ServerSettings:
    """Server settings; every limit answers with a clear 4xx error when exceeded.

    Attributes:
        model_name: the name reported in ``/v1/embeddings`` responses (any requested name selects
            the one served model).
        api_keys: accepted ``Authorization: Bearer`` keys; empty means no authentication.
        max_body_bytes: the largest request body accepted (413 above it).
        max_inputs: the most inputs in one embeddings or rerank request.
        max_tokens_per_input: the most tokens in one input (longer inputs are refused, not cut).
        max_input_chars: the most characters in one text input, checked before any tokenizing so a
            huge text is refused at once; ``None`` means 32 x ``max_tokens_per_input``.
        max_batch_tokens: the token budget of one merged forward pass.
        max_wait_ms: how long the batcher waits for more requests to join a forward pass.
        cors_origins: origins allowed by CORS; empty (the default) adds no CORS headers at all.
        allow_local_files: a folder whose files remote callers may name as media (paths inside it);
            ``None`` (the default): remote input is data, never a path.
        allow_url_hosts: hosts whose http(s) image URLs remote callers may name; empty (the default):
            the server fetches nothing.
        url_timeout_s: seconds to wait for an allowed URL.
        max_url_bytes: the largest download from an allowed URL.
        max_image_pixels: pixels in one decoded image (or video frame).
        max_request_pixels: pixels decoded for one request, all its images together.
        max_audio_seconds: seconds in one audio input.
        max_video_frames: frames in one video input.
        max_pdf_pages: pages in one uploaded PDF (each page is also held to ``max_image_pixels``).
        public_metrics: with ``api_keys`` set, leave ``/metrics`` open (for a scraper without the key).
        public_docs: with ``api_keys`` set, leave ``/docs``, ``/redoc`` and ``/openapi.json`` open;
            otherwise the schema needs the key and the two pages are off (a browser cannot send it).
        allowed_hosts: the ``Host`` header values answered (any port), so a web page cannot reach a
            local server through a DNS name it controls (DNS rebinding): names, ``"*.example.com"``
            for its subdomains, or ``"*"`` for any host. The default is the loopback names.
    """

    model_name: str = "omniembed"
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 2**20
    max_inputs: int = 2048
    max_tokens_per_input: int = 8192
    max_input_chars: int | None = None
    max_batch_tokens: int = 16384
    max_wait_ms: float = 0.0
    cors_origins: tuple[str, ...] = ()
    allow_local_files: str | None = None
    allow_url_hosts: tuple[str, ...] = ()
    url_timeout_s: float = 5.0
    max_url_bytes: int = 16 * 2**20
    max_image_pixels: int = input_policy.REMOTE_IMAGE_PIXELS
    max_request_pixels: int = input_policy.REMOTE_REQUEST_PIXELS
    max_audio_seconds: float = input_policy.REMOTE_AUDIO_SECONDS
    max_video_frames: int = input_policy.REMOTE_VIDEO_FRAMES
    max_pdf_pages: int = 500
    public_metrics: bool = False
    public_docs: bool = False
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS

    def input_policy(self) -> InputPolicy:
        """The policy every remote request's inputs are read under."""
        return InputPolicy.for_remote_callers(
            file_root=self.allow_local_files,
            url_hosts=frozenset(self.allow_url_hosts),
            url_timeout=self.url_timeout_s,
            max_url_bytes=self.max_url_bytes,
            max_image_pixels=self.max_image_pixels,
            max_request_pixels=self.max_request_pixels,
            max_audio_seconds=self.max_audio_seconds,
            max_video_frames=self.max_video_frames,
        )

    @property
    def input_char_limit(self) -> int:
        """The character cap in force: ``max_input_chars``, or 32 characters per allowed token (a
        token covers about 4 characters of English, so only texts far over the token cap meet it)."""
        return self.max_input_chars if self.max_input_chars is not None else 32 * self.max_tokens_per_input
