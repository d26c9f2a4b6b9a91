"""Old module paths that keep importing, with a warning that names the new one."""

from __future__ import annotations

import warnings


def warn_moved(old: str, new: str) -> None:
    """Warn (once per import of ``old``) that the module moved to ``new``."""
    warnings.warn(f"{old} moved to {new}; import it from there", DeprecationWarning, stacklevel=3)
