"""Late interaction: multi-vector encoders (ColBERT, ColPali-style vision retrieval), MaxSim, MUVERA and
an index."""

# The vision encoder registers itself as the loader of ``*ForRetrieval`` folders.
from omniembed.late_interaction import vision as _vision  # noqa: F401
