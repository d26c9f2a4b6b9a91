"""The summary of an import's refused objects: a reason most of them share is said once, with its fix.

>>> reason("property 'metadata' is text, got dict {'author': 'x'}")
"property 'metadata' is text, got dict"
>>> fix("property 'metadata' is text, got dict")
"property 'metadata' holds objects; declare it as object or drop it with --exclude metadata"
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol

import typer

SHOWN = 20
_TYPE_MISMATCH = re.compile(r"property '(\w+)' is (\S+?)[,:].*?got (\w+)")
_UNKNOWN = re.compile(r"unknown properties \[([^\]]*)\]")
_HOLDS = {"str": "text", "int": "integers", "float": "numbers", "bool": "booleans"}


class Placed(Protocol):
    """Where each object came from, by its position in the import."""

    def __getitem__(self, position: int) -> str: ...


def reason(message: str) -> str:
    """What a refusal message says without the offending value, so that alike refusals group."""
    mismatch = _TYPE_MISMATCH.match(message)
    if mismatch:
        name, kind, got = mismatch.groups()
        return f"property {name!r} is {kind}, got {got}"
    unknown = _UNKNOWN.search(message)
    if unknown:
        return f"unknown properties [{unknown.group(1)}]"
    return message


def fix(common: str) -> str:
    """The fix to print beside a reason most refused objects share."""
    mismatch = re.fullmatch(r"property '(\w+)' is (\S+), got (\w+)", common)
    if mismatch:
        name, kind, got = mismatch.groups()
        if got == "dict":
            return f"property {name!r} holds objects; declare it as object or drop it with --exclude {name}"
        if got == "list":
            return (
                f"property {name!r} holds lists; declare it as a list type (text[], object[], ...) or "
                f"drop it with --exclude {name}"
            )
        holds = _HOLDS.get(got, f"{got} values")
        return (
            f"property {name!r} is {kind} in the collection but holds {holds}; fix the values, state the "
            f"type of a new collection with --schema, or drop it with --exclude {name}"
        )
    unknown = _UNKNOWN.fullmatch(common)
    if unknown:
        names = [n.strip(" '\"") for n in unknown.group(1).split(",") if n.strip()]
        drops = " ".join(f"--exclude {n}" for n in names)
        return f"the collection has no properties {names}; drop them with {drops} or use a new collection"
    return common


def report(errors: Mapping[int, str], places: Placed, skipped: Sequence[str]) -> None:
    """Print skipped lines and refused objects to stderr; a reason shared by most is printed once."""
    for line in skipped[:SHOWN]:
        typer.echo(f"  skipped {line}", err=True)
    if len(skipped) > SHOWN:
        typer.echo(f"  ... and {len(skipped) - SHOWN} more skipped lines", err=True)
    if not errors:
        return
    reasons = {position: reason(message) for position, message in errors.items()}
    common, count = Counter(reasons.values()).most_common(1)[0]
    rest = sorted(position for position, why in reasons.items() if why != common)
    if count * 2 > len(errors) and count > 1:
        typer.echo(f"{count} objects refused: {fix(common)}", err=True)
    else:
        rest = sorted(errors)
    for position in rest[:SHOWN]:
        typer.echo(f"  {places[position]}: {errors[position]}", err=True)
    if len(rest) > SHOWN:
        typer.echo(f"  ... and {len(rest) - SHOWN} more refused objects", err=True)
