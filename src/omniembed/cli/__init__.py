"""The ``omniembed`` command line: encode, import, search, serve, info and bench.

Exit codes scripts can rely on:

====  ==============================================================================
0     success
1     usage error (unknown command or option, missing argument)
2     input error (a file, model, database or collection that cannot be read or found,
      a value the command cannot take, or a missing optional dependency)
3     partial success: ``import`` stored some objects and refused others
4     internal error (a bug: please report it with the log)
====  ==============================================================================
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

OK, USAGE, INPUT_ERROR, PARTIAL, INTERNAL = 0, 1, 2, 3, 4

logger = logging.getLogger("omniembed.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default) and return the exit code."""
    from omniembed.errors import OmniembedError

    try:
        import typer

        from omniembed.cli.commands import app
    except ImportError as error:
        print(
            f"omniembed: the command line needs {error.name}: pip install 'omniembed[server]'",
            file=sys.stderr,
        )
        return INPUT_ERROR

    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(sys.argv[1:] if argv is None else argv), prog_name="omniembed", standalone_mode=False
        )
    except typer.Exit as done:
        return int(getattr(done, "exit_code", OK))
    except (typer.TyperException, typer.Abort) as problem:  # usage errors (typer's own click)
        formatter = getattr(problem, "format_message", None)
        message = formatter() if callable(formatter) else str(problem) or "aborted"
        print(f"omniembed: {message}\nTry 'omniembed --help'.", file=sys.stderr)
        return USAGE
    except (OmniembedError, OSError, ValueError, KeyError, TypeError) as error:
        text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        print(f"omniembed: error: {text}", file=sys.stderr)
        return INPUT_ERROR
    except Exception:
        logger.exception("internal error")
        return INTERNAL
    return int(result) if isinstance(result, int) else OK
