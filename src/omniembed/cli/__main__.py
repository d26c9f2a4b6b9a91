"""Run the command line: ``python -m omniembed.cli``."""

from __future__ import annotations

from omniembed.cli import main

raise SystemExit(main())
