"""Bulk encoding and import on a Ray cluster: ``embed`` a Ray Dataset, ``import_into`` a collection.

Ray is imported on first use (``pip install 'omniembed[ray]'``); see docs/distributed.md.
"""

from __future__ import annotations

from omniembed.distributed.cluster import clear_errors, connect, session
from omniembed.distributed.embed import embed
from omniembed.distributed.importing import ImportSummary, import_into
from omniembed.distributed.skipped import Skipped

__all__ = ["ImportSummary", "Skipped", "clear_errors", "connect", "embed", "import_into", "session"]
