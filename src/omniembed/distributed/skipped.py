"""Counting the rows an embedding job skips, across all its workers (a small Ray actor)."""

from __future__ import annotations

from typing import Any

from omniembed.distributed.cluster import ray_module

TIMEOUT_S = 60.0


class _Tally:
    """The actor's state: each skipped row once (a retried task reports the same rows again)."""

    def __init__(self, keep: int) -> None:
        self.seen: dict[str, str] = {}
        self.keep = keep

    def record(self, entries: list[tuple[str, str]]) -> None:
        for identity, message in entries:
            self.seen.setdefault(identity, message)

    def summary(self) -> tuple[int, list[str]]:
        return len(self.seen), list(self.seen.values())[: self.keep]


class Skipped:
    """The rows ``embed(..., on_bad="skip")`` left out: how many, and the first few messages.

    Create it before the job (Ray must be started), pass it as ``skipped=``, read it after the
    dataset has been consumed (written, materialized or imported).
    """

    def __init__(self, keep: int = 20) -> None:
        ray = ray_module()
        self._actor = ray.remote(num_cpus=0)(_Tally).remote(keep)

    def record(self, entries: list[tuple[str, str]]) -> None:
        """Record skipped rows as ``(identity, message)`` pairs (workers call this)."""
        ray_module().get(self._actor.record.remote(entries), timeout=TIMEOUT_S)

    def _summary(self) -> tuple[int, list[str]]:
        count, messages = ray_module().get(self._actor.summary.remote(), timeout=TIMEOUT_S)
        return int(count), list(messages)

    @property
    def count(self) -> int:
        """How many rows were skipped."""
        return self._summary()[0]

    @property
    def examples(self) -> list[str]:
        """Why the first skipped rows were left out, naming each row."""
        return self._summary()[1]

    def __reduce__(self) -> Any:  # workers get the same actor
        return (_restore, (self._actor,))


def _restore(actor: Any) -> Skipped:
    skipped = Skipped.__new__(Skipped)
    skipped._actor = actor
    return skipped
