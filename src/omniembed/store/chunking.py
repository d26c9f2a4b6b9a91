"""Splitting a long text into pieces that each fit a model's ``max_seq_length``."""

from __future__ import annotations

from typing import Any


def chunk_text(model: Any, text: str, overlap: int = 16) -> list[str]:
    """Cut ``text`` at token boundaries into windows the model embeds without truncation.

    Each window holds at most ``max_seq_length`` minus the special tokens and the document prompt;
    consecutive windows share ``overlap`` tokens, so no sentence is cut with no context on one side.
    """
    tokenizer = model.tokenizer
    budget = int(model.max_seq_length) - _reserved(model)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= budget:
        return [text]
    if budget <= overlap:
        raise ValueError(f"max_seq_length {model.max_seq_length} leaves no room to chunk; raise it")
    step = budget - overlap
    pieces = []
    for start in range(0, len(offsets), step):
        window = offsets[start : start + budget]
        pieces.append(text[window[0][0] : window[-1][1]])
        if start + budget >= len(offsets):
            break
    return pieces


def _reserved(model: Any) -> int:
    """Tokens that the tokenizer's special tokens and the document prompt take in each window."""
    special = len(model.tokenizer("", add_special_tokens=True)["input_ids"])
    prompts = getattr(model, "prompts", {}) or {}
    prompt = next((prompts[name] for name in ("document", "passage", "corpus") if prompts.get(name)), "")
    prompt_tokens = len(model.tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else 0
    return special + prompt_tokens
