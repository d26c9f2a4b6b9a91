"""Model building blocks: a pipeline of modules read from (and written to) a model folder."""

from omniembed.modules.dense import Dense
from omniembed.modules.folder import INPUT_MODULES, MODULE_TYPES, ModelConfig, load_modules, save_modules
from omniembed.modules.module import Features, LoadOptions, Module
from omniembed.modules.normalize import Normalize
from omniembed.modules.pooling import Pooling
from omniembed.modules.router import Router, routing_task
from omniembed.modules.sparse import MaskedLMTransformer, SparseStaticEmbedding, SpladePooling
from omniembed.modules.static_embedding import StaticEmbedding
from omniembed.modules.transformer import Transformer

__all__ = [
    "INPUT_MODULES",
    "MODULE_TYPES",
    "Dense",
    "Features",
    "LoadOptions",
    "MaskedLMTransformer",
    "ModelConfig",
    "Module",
    "Normalize",
    "Pooling",
    "Router",
    "SparseStaticEmbedding",
    "SpladePooling",
    "StaticEmbedding",
    "Transformer",
    "load_modules",
    "routing_task",
    "save_modules",
]
