"""How a forward pass runs fast: batching by token budget, thread limits, precision and backends.

Nothing here changes what a model computes in the exact mode (``dtype="float32"``): batches are
packed by padded tokens instead of a fixed count, linear layers run in oneDNN instead of torch's
default BLAS, BERT-family layers run in one flat loop instead of transformers' nested modules, and
the network may run in ONNX Runtime instead of eager torch, but every input still
gets the same embedding as the reference library (within float32 rounding). The fast modes
(``dtype="bfloat16"`` or ``"int8"``) trade a little accuracy for speed and say so in their names.
"""

from __future__ import annotations
