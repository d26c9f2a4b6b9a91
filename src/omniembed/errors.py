"""Exceptions raised by omniembed.

Every error subclasses :class:`OmniembedError` and a built-in exception, so callers can catch either::

    OmniembedError
    ├── ModelNotFoundError (FileNotFoundError)   no folder, cache entry or hub repo for a model name
    ├── ModelFormatError (ValueError)            a model folder we cannot read: bad JSON, corrupt weights,
    │                                            missing tokenizer, unknown module type
    ├── InvalidInputError (TypeError)            an input ``encode`` cannot take, with its index
    │   └── UnsupportedModalityError             an input of a kind the model does not embed
    ├── InvalidImageError (ValueError)           an image that cannot be read: missing, corrupt, too large
    ├── InvalidAudioError (ValueError)           audio that cannot be read: missing, corrupt, empty, bad rate
    ├── InvalidVideoError (ValueError)           a video that cannot be read: missing, corrupt, no frames
    ├── InvalidDocumentError (ValueError)        a PDF that cannot be read: not a PDF, corrupt, encrypted,
    │                                            empty, or over a size, page or pixel limit
    ├── MissingExtraError (ImportError)          an optional dependency is not installed
    ├── CollectionNotFoundError (KeyError)       no collection with that name in the database
    ├── CollectionExistsError (ValueError)       creating a collection whose name is taken
    ├── ObjectNotFoundError (KeyError)           no object with that uuid in the collection
    ├── DatabaseLockedError (RuntimeError)       the database folder is open in another process
    └── PoolWorkerError (RuntimeError)           a multi-process encoding worker died or could not start
"""

from __future__ import annotations

import importlib
from typing import Any


class OmniembedError(Exception):
    """Base class of all omniembed errors."""


class ModelNotFoundError(OmniembedError, FileNotFoundError):
    """A model name or path resolves to nothing we can load."""


class ModelFormatError(OmniembedError, ValueError):
    """A model folder exists but a file in it is missing, corrupt or of an unknown kind."""


class InvalidInputError(OmniembedError, TypeError):
    """An input has a type or shape that the model cannot embed."""


class MissingExtraError(OmniembedError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


def import_extra(module: str, message: str) -> Any:
    """Import ``module``, an optional dependency, or raise ``MissingExtraError(message)``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(message) from error


class UnsupportedModalityError(InvalidInputError):
    """An input's modality (image, audio, a text+image pair, ...) is not one the model embeds."""


class InvalidImageError(OmniembedError, ValueError):
    """An image input cannot be read: a missing or corrupt file, a refused URL, or too many pixels."""


class InvalidAudioError(OmniembedError, ValueError):
    """An audio input cannot be read: a missing or corrupt file, no samples, or a bad sampling rate."""


class InvalidVideoError(OmniembedError, ValueError):
    """A video input cannot be read: a missing or corrupt file, or no frames."""


class InvalidDocumentError(OmniembedError, ValueError):
    """A document (PDF) cannot be read: not a PDF, corrupt, encrypted, empty, or over a limit."""


class CollectionNotFoundError(OmniembedError, KeyError):
    """No collection has the given name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CollectionExistsError(OmniembedError, ValueError):
    """A collection with the given name already exists."""


class ObjectNotFoundError(OmniembedError, KeyError):
    """No object has the given uuid."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatabaseLockedError(OmniembedError, RuntimeError):
    """Another process holds the database folder open."""


class PoolWorkerError(OmniembedError, RuntimeError):
    """A worker of a multi-process encoding pool died or could not start; the pool is stopped."""
