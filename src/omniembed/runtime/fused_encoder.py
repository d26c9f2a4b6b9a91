"""Run the layers of a BERT-family text encoder in a flat loop instead of nested modules.

In transformers, much of a short query's forward pass is Python: nested module calls, keyword
plumbing, attention-mask building and the pooler that sentence embeddings never read. On the CPU,
``FusedEncoder`` runs the same modules' weights with the same operators (embeddings, scaled
dot-product attention, layer norms) from one loop (for short inputs of small models, with the
query, key and value projections as one product of stacked weights, float or int8), so the
numbers are those of the transformers model up to float rounding. The layers work on one matrix
of token rows whose count is rounded up (``padded_rows``), which keeps oneDNN's per-shape kernels
few. Anything else (gradients, export, other devices, output options) keeps the transformers
forward pass. BERT, RoBERTa, XLM-R, CamemBERT and DistilBERT qualify (``LAYOUTS``), and so do the
BERT and RoBERTa-family ``...ForSequenceClassification`` rerankers (``FusedClassifier``). What the
flat loop saves is measured in BENCHMARKS.md, "Figures behind the runtime choices".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from omniembed.modules import Features, Transformer
from omniembed.modules.scorers import ClassifierScorer
from omniembed.modules.sparse import MaskedLMTransformer
from omniembed.runtime.int8 import Int8Linear
from omniembed.runtime.onednn import ONEDNN_DTYPES, PACK_ROWS, OneDnnLinear, tensor_versions


@dataclass(frozen=True)
class Layout:
    """Where an encoder family keeps each part of a layer, as dotted attribute paths."""

    layers: str
    """The ``ModuleList`` of layers, from the model."""
    attention: str
    """The self-attention module (it holds ``scaling``), from a layer."""
    query: str
    key: str
    value: str
    attention_output: str
    attention_norm: str
    feed_forward: tuple[str, ...]
    """The modules of the feed-forward block, applied in this order."""
    output_norm: str
    token_types: bool = True
    """Whether the embeddings take ``token_type_ids``."""

    def parts(self) -> tuple[str, ...]:
        """Every path a layer must have."""
        paths = (self.attention, self.query, self.key, self.value, self.attention_output)
        return (*paths, self.attention_norm, *self.feed_forward, self.output_norm)


BERT_LAYOUT = Layout(
    layers="encoder.layer",
    attention="attention.self",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    attention_output="attention.output.dense",
    attention_norm="attention.output.LayerNorm",
    feed_forward=("intermediate", "output.dense"),
    output_norm="output.LayerNorm",
)
DISTILBERT_LAYOUT = Layout(
    layers="transformer.layer",
    attention="attention",
    query="attention.q_lin",
    key="attention.k_lin",
    value="attention.v_lin",
    attention_output="attention.out_lin",
    attention_norm="sa_layer_norm",
    feed_forward=("ffn.lin1", "ffn.activation", "ffn.lin2"),
    output_norm="output_layer_norm",
    token_types=False,
)
LAYOUTS = {
    "bert": BERT_LAYOUT,
    "roberta": BERT_LAYOUT,
    "xlm-roberta": BERT_LAYOUT,
    "camembert": BERT_LAYOUT,
    "distilbert": DISTILBERT_LAYOUT,
}
"""transformers model types with absolute positions and post-norm layers, and their layouts."""

CLASSIFIER_HEADS = {
    "BertForSequenceClassification": "pooler",
    "RobertaForSequenceClassification": "sequence",
    "XLMRobertaForSequenceClassification": "sequence",
    "CamembertForSequenceClassification": "sequence",
}
"""Which output each classifier reads: BERT's pooler (a dense layer over the first token) or the
whole sequence (RoBERTa's head picks the first token itself)."""

SHORT_ROWS = 64
"""Batches of up to this many token rows count as short: their row count is kept as it is, and
their query, key and value projections are one product."""

STACK_MAX_BYTES = 4 * 2**20
"""The largest q/k/v weights kept stacked for short inputs (all-MiniLM-L6-v2's take 1.8 MB per
layer). A short input of a bigger model is bound by reading its weights, not by the two calls
stacking saves, and the stacked copy would sit beside each projection's own."""

PackedProjection = tuple[tuple[int, ...], Tensor, Tensor]
"""What the packed q/k/v weights were made from, the packed weights and the stacked biases."""


class FusedEncoder:
    """The flat forward pass of one BERT-family model (see the module docstring).

    Args:
        model: a transformers ``BertModel``, ``RobertaModel``, ``XLMRobertaModel``,
            ``CamembertModel`` or ``DistilBertModel``; ``supports(model)`` tells whether it qualifies.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.layout = LAYOUTS[model.config.model_type]  # type: ignore[union-attr,index]
        self._packed: dict[int, PackedProjection] = {}
        self._int8_stacks: dict[int, tuple[tuple[Int8Linear, ...], Int8Linear]] = {}

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Whether ``model`` is a bidirectional BERT-family encoder with a layout this runs."""
        config = getattr(model, "config", None)
        layout = LAYOUTS.get(getattr(config, "model_type", None))  # type: ignore[arg-type]
        if config is None or layout is None:
            return False
        if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
            return False
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            return False
        if getattr(config, "chunk_size_feed_forward", 0) or config._attn_implementation != "sdpa":
            return False
        layers = _resolve(model, layout.layers)
        if not hasattr(model, "embeddings") or not isinstance(layers, nn.ModuleList):
            return False
        return all(
            isinstance(_resolve(layer, part), nn.Module) for layer in layers for part in layout.parts()
        )

    def __call__(self, inputs: Features) -> Tensor | None:
        """Return the last hidden state for a padded batch of token ids, or ``None`` where the
        flat path does not apply: gradients, tracing or export, other devices, no ``input_ids``."""
        input_ids = inputs.get("input_ids")
        if input_ids is None or not self._applies(input_ids):
            return None
        model: Any = self.model
        if "token_type_ids" in inputs and self.layout.token_types:
            embedded: Tensor = model.embeddings(input_ids=input_ids, token_type_ids=inputs["token_type_ids"])
        else:
            embedded = model.embeddings(input_ids=input_ids)
        attention_mask = inputs.get("attention_mask")
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]
        batch, length, width = embedded.shape
        tokens = batch * length
        heads = model.config.num_attention_heads
        # Every layer works on one (rows, width) matrix whose row count is rounded up (see
        # padded_rows); the rows past ``tokens`` are zeros that nothing reads.
        hidden = _padded(embedded.reshape(tokens, width), padded_rows(tokens))
        layout = self.layout
        for index, layer in enumerate(_resolve(model, layout.layers)):
            attention = _resolve(layer, layout.attention)
            query, key, value = self._projections(index, layer, hidden, (batch, length, heads))
            context = nn.functional.scaled_dot_product_attention(
                query, key, value, attn_mask=mask, scale=attention.scaling
            )
            gathered = hidden.new_empty(hidden.shape)
            gathered[:tokens].view(batch, length, heads, -1).copy_(context.transpose(1, 2))
            gathered[tokens:].zero_()
            output = _resolve(layer, layout.attention_output)(gathered)
            hidden = _add_and_norm(output, hidden, _resolve(layer, layout.attention_norm))
            output = hidden
            for path in layout.feed_forward:
                output = _resolve(layer, path)(output)
            hidden = _add_and_norm(output, hidden, _resolve(layer, layout.output_norm))
        return hidden[:tokens].view(batch, length, width)

    def _applies(self, input_ids: Tensor) -> bool:
        return (
            input_ids.device.type == "cpu"
            and not self.model.training
            and not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
            and not torch.compiler.is_exporting()
            and not torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]
        )

    def _projections(
        self, index: int, layer: nn.Module, hidden: Tensor, shape: tuple[int, int, int]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The query, key and value heads, each ``(batch, heads, length, head size)``."""
        batch, length, heads = shape
        tokens = batch * length
        layout = self.layout
        linears = (_resolve(layer, layout.query), _resolve(layer, layout.key), _resolve(layer, layout.value))
        # One product of stacked weights saves two calls, but its q/k/v views are strided, which
        # slows attention over long inputs (BENCHMARKS.md, "Figures behind the runtime choices").
        short = tokens <= SHORT_ROWS
        packed = self._packed_projection(index, linears, hidden) if short else None
        if packed is not None:
            stacked = torch.ops.mkldnn._linear_pointwise(hidden, packed[1], packed[2], "none", [], "none")
        elif short and _stackable_int8(linears):
            stacked = self._stacked_int8(index, linears)(hidden)
        else:
            query, key, value = (
                linear(hidden)[:tokens].view(batch, length, heads, -1).transpose(1, 2) for linear in linears
            )
            return query, key, value
        heads_first = stacked[:tokens].view(batch, length, 3, heads, -1).permute(2, 0, 3, 1, 4)
        query, key, value = heads_first.unbind(0)
        return query, key, value

    def _packed_projection(
        self, index: int, linears: tuple[Any, Any, Any], hidden: Tensor
    ) -> PackedProjection | None:
        """The stacked q/k/v weights in oneDNN's layout, remade when a weight changed; ``None``
        when the projections are not plain oneDNN float layers (int8, say) or are too large."""
        if not all(type(linear) is OneDnnLinear and linear.bias is not None for linear in linears):
            return None
        weights = [linear.weight for linear in linears]
        dtype = weights[0].dtype
        if hidden.dtype != dtype or dtype not in ONEDNN_DTYPES or any(w.dtype != dtype for w in weights):
            return None
        if sum(w.numel() for w in weights) * weights[0].element_size() > STACK_MAX_BYTES:
            return None
        source = tensor_versions(*(tensor for linear in linears for tensor in (linear.weight, linear.bias)))
        cached = self._packed.get(index)
        if cached is None or cached[0] != source:
            stacked = torch.cat([w.detach() for w in weights])
            packed = torch.ops.mkldnn._reorder_linear_weight(stacked, PACK_ROWS)
            biases = torch.cat([linear.bias.detach() for linear in linears])
            cached = (source, packed, biases)
            self._packed[index] = cached
        return cached

    def _stacked_int8(self, index: int, linears: tuple[Int8Linear, Int8Linear, Int8Linear]) -> Int8Linear:
        """The int8 q/k/v projections of layer ``index`` as one layer (``Int8Linear.stacked``)."""
        cached = self._int8_stacks.get(index)
        if cached is None or any(old is not new for old, new in zip(cached[0], linears, strict=True)):
            cached = (linears, Int8Linear.stacked(linears))
            self._int8_stacks[index] = cached
        return cached[1]

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the packed weights: oneDNN's opaque tensors cannot be, and are remade."""
        return {"model": self.model, "layout": self.layout, "_packed": {}, "_int8_stacks": {}}


def _stackable_int8(linears: tuple[Any, Any, Any]) -> bool:
    """Whether q/k/v projections are int8 layers small enough to keep a stacked copy of (as
    ``STACK_MAX_BYTES`` for float ones)."""
    if not all(type(linear) is Int8Linear for linear in linears):
        return False
    size: int = sum(linear.weight_int8.numel() for linear in linears)
    return size <= STACK_MAX_BYTES


def padded_rows(tokens: int) -> int:
    """The row count a batch of ``tokens`` token rows runs at: the same up to 64 rows, then a
    multiple of 16, and of 64 past 256.

    oneDNN builds (and keeps, up to a cache of 1,024) one kernel per distinct product shape, with
    buffers beside it, and token-budget batches come in dozens of row counts. Rounding leaves a few
    dozen shapes for a few more rows. Short inputs keep their own row count: a query's forward pass
    is mostly reading weights, and padding rows would cost time. The memory and time behind these
    steps are in BENCHMARKS.md, "Figures behind the runtime choices".
    """
    if tokens <= SHORT_ROWS:
        return tokens
    step = 16 if tokens <= 256 else 64
    return -(-tokens // step) * step


def _padded(rows: Tensor, count: int) -> Tensor:
    """``rows`` followed by zero rows up to ``count`` rows (``rows`` itself when already there)."""
    if rows.shape[0] == count:
        return rows
    padded = rows.new_zeros(count, rows.shape[1])
    padded[: rows.shape[0]] = rows
    return padded


def _resolve(module: Any, dotted: str) -> Any:
    """The submodule at a dotted path below ``module``, or ``None`` when a step is missing.

    Read from ``_modules`` directly: ``nn.Module.__getattr__`` is slow enough to show in a short
    query's forward pass, which makes dozens of lookups (BENCHMARKS.md, "Figures behind the runtime
    choices").
    """
    for name in dotted.split("."):
        module = getattr(module, "_modules", {}).get(name)
    return module


def _add_and_norm(output: Tensor, residual: Tensor, norm: nn.LayerNorm) -> Tensor:
    """``norm(output + residual)``, adding in place into ``output`` (a fresh product)."""
    return nn.functional.layer_norm(
        output.add_(residual), norm.normalized_shape, norm.weight, norm.bias, norm.eps
    )


class FusedClassifier:
    """The logits of a BERT-family ``...ForSequenceClassification`` model, its encoder run by
    ``FusedEncoder`` and its own head after it."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.encoder = FusedEncoder(model.base_model)  # type: ignore[arg-type]
        self.head = CLASSIFIER_HEADS[type(model).__name__]

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Whether ``model`` is one of ``CLASSIFIER_HEADS`` over an encoder ``FusedEncoder`` runs."""
        head = CLASSIFIER_HEADS.get(type(model).__name__)
        encoder: Any = getattr(model, "base_model", None)
        if head is None or not isinstance(encoder, nn.Module) or not FusedEncoder.supports(encoder):
            return False
        return head != "pooler" or encoder.pooler is not None

    def __call__(self, inputs: Features) -> Tensor | None:
        """Return the logits, or ``None`` where the flat path does not apply."""
        hidden = self.encoder(inputs)
        if hidden is None:
            return None
        model: Any = self.model
        if self.head == "pooler":
            hidden = model.base_model.pooler(hidden)
        logits: Tensor = model.classifier(hidden)
        return logits


MASKED_LM_HEADS = {
    "BertForMaskedLM": "cls",
    "RobertaForMaskedLM": "lm_head",
    "XLMRobertaForMaskedLM": "lm_head",
    "CamembertForMaskedLM": "lm_head",
}
"""The vocabulary head of each masked language model whose encoder ``FusedEncoder`` runs."""


class FusedMaskedLM:
    """The vocabulary logits of a BERT-family ``...ForMaskedLM`` model (a SPLADE network), its
    encoder run by ``FusedEncoder`` and its own head after it (whose linear layers run in oneDNN)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.encoder = FusedEncoder(model.base_model)  # type: ignore[arg-type]
        self.head: nn.Module = getattr(model, MASKED_LM_HEADS[type(model).__name__])

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Whether ``model`` is one of ``MASKED_LM_HEADS`` over an encoder ``FusedEncoder`` runs."""
        head = MASKED_LM_HEADS.get(type(model).__name__)
        encoder: Any = getattr(model, "base_model", None)
        if head is None or not isinstance(getattr(model, head, None), nn.Module):
            return False
        return isinstance(encoder, nn.Module) and FusedEncoder.supports(encoder)

    def __call__(self, inputs: Features) -> Tensor | None:
        """Return the logits, or ``None`` where the flat path does not apply."""
        hidden = self.encoder(inputs)
        if hidden is None:
            return None
        logits: Tensor = self.head(hidden)
        return logits

    def pooled(self, inputs: Features, pool_rows: Callable[[Tensor], Tensor]) -> Tensor | None:
        """One pooled row per input, ``pool_rows`` applied to the logits of its own tokens; ``None``
        where the flat path does not apply.

        The head runs on the unpadded tokens, ``HEAD_ROWS`` at a time (whole inputs per chunk), and
        each chunk is pooled at once: the (tokens × vocabulary) logits, the largest tensor of a SPLADE
        model, are never held whole nor computed for padding.
        """
        hidden = self.encoder(inputs)
        if hidden is None:
            return None
        mask = inputs["attention_mask"].bool()
        lengths = mask.sum(dim=1).tolist()
        rows = hidden[mask]  # each input's tokens in turn
        pooled = []
        for start, stop in _chunks(lengths, HEAD_ROWS):
            first_row = sum(lengths[:start])
            logits: Tensor = self.head(rows[first_row : first_row + sum(lengths[start:stop])])
            offset = 0
            for length in lengths[start:stop]:
                pooled.append(pool_rows(logits[offset : offset + length]))
                offset += length
        return torch.stack(pooled)


HEAD_ROWS = 256
"""Token rows per product of a masked-LM head in ``FusedMaskedLM.pooled``: enough to amortize reading
the (vocabulary × hidden) weights, few enough that a chunk's logits stay tens of megabytes."""


def _chunks(lengths: list[int], rows: int) -> list[tuple[int, int]]:
    """Cut consecutive inputs into runs of at most ``rows`` tokens (an input longer runs alone).

    >>> _chunks([100, 100, 100, 300, 10], 256)
    [(0, 2), (2, 3), (3, 4), (4, 5)]
    """
    chunks, start, total = [], 0, 0
    for index, length in enumerate(lengths):
        if index > start and total + length > rows:
            chunks.append((start, index))
            start, total = index, 0
        total += length
    if start < len(lengths):
        chunks.append((start, len(lengths)))
    return chunks


def use_fused_encoder(model: nn.Module) -> int:
    """Give every ``Transformer`` and classifier reranker in ``model`` whose network qualifies a
    flat forward pass as its ``fast_forward``; return how many got one."""
    installed = 0
    for module in model.modules():
        if isinstance(module, MaskedLMTransformer):
            if FusedMaskedLM.supports(module.auto_model):
                module.fast_forward = FusedMaskedLM(module.auto_model)
                installed += 1
        elif isinstance(module, Transformer) and FusedEncoder.supports(module.auto_model):
            module.fast_forward = FusedEncoder(module.auto_model)
            installed += 1
        elif isinstance(module, ClassifierScorer) and FusedClassifier.supports(module.model):
            module.fast_forward = FusedClassifier(module.model)
            installed += 1
    return installed
