"""Model building blocks: a pipeline of modules read from (and written to) a model folder."""

from omniembed.models.dense import Dense
from omniembed.models.folder import MODULE_TYPES, ModelConfig, load_modules, save_modules
from omniembed.models.module import Features, LoadOptions, Module
from omniembed.models.normalize import Normalize
from omniembed.models.pooling import Pooling
from omniembed.models.transformer import Transformer

__all__ = [
    "MODULE_TYPES",
    "Dense",
    "Features",
    "LoadOptions",
    "ModelConfig",
    "Module",
    "Normalize",
    "Pooling",
    "Transformer",
    "load_modules",
    "save_modules",
]
