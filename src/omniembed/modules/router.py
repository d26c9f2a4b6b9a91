"""``Router``: different module pipelines for different tasks (queries and documents, say)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from torch import nn

from omniembed.errors import ModelFormatError
from omniembed.modules.module import Features, Module, read_json, write_json

ROUTER_CONFIG_FILE = "router_config.json"

RouteKey = tuple[str | None, str | None]
"""``(task, modality)``; ``None`` matches any."""

ACTIVE_TASK: ContextVar[str | None] = ContextVar("omniembed_active_task", default=None)
"""The task of the ``encode`` call in progress on this thread, which ``Router.forward`` routes by."""


@contextmanager
def routing_task(task: str | None) -> Iterator[None]:
    """Route the ``Router`` modules run inside the block by ``task`` (``None``: the default route)."""
    token = ACTIVE_TASK.set(task)
    try:
        yield
    finally:
        ACTIVE_TASK.reset(token)


class Router(Module):
    """Hold one pipeline per route and pick one by task: ``encode_query`` takes the ``"query"`` route,
    ``encode_document`` the ``"document"`` route, and plain ``encode`` the default route.

    Args:
        routes: route name to the modules it runs, input module first.
        default_route: the route for inputs given no task; the first route when ``None`` and
            ``allow_empty_key``.
        allow_empty_key: whether inputs without a task may take a default route at all.
        route_mappings: ``(task, modality)`` to route name, for routes not named after their task.
    """

    reference_type = "sentence_transformers.base.modules.router.Router"
    config_file_name = ROUTER_CONFIG_FILE

    def __init__(
        self,
        routes: dict[str, list[Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: dict[RouteKey, str] | None = None,
    ) -> None:
        super().__init__()
        if not routes or any(not modules for modules in routes.values()):
            raise ModelFormatError("a Router needs at least one route, each with at least one module")
        mappings = dict(route_mappings or {})
        for name in [default_route, *mappings.values()]:
            if name is not None and name not in routes:
                raise ModelFormatError(f"Router route {name!r} is not one of its routes {sorted(routes)}")
        if default_route is None and allow_empty_key:
            default_route = next(iter(routes))
        self.sub_modules = nn.ModuleDict({name: nn.Sequential(*modules) for name, modules in routes.items()})
        self.default_route = default_route
        self.allow_empty_key = allow_empty_key
        self.route_mappings = mappings

    @property
    def route_names(self) -> list[str]:
        """The names of the routes, in their saved order."""
        return list(self.sub_modules)

    def route_name(self, task: str | None, modality: str = "text") -> str:
        """The route for a task, in the reference library's order: an exact ``(task, modality)``
        mapping, then ``(task, any)``, ``(any, modality)``, ``(any, any)``, a route named after the
        task or modality, then the default route."""
        for key in ((task, modality), (task, None), (None, modality), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task is not None and task in self.sub_modules:
            return task
        if modality in self.sub_modules:
            return modality
        if task is not None:
            raise ValueError(f"this model has no route for task {task!r}; its routes are {self.route_names}")
        if self.default_route is None:
            raise ValueError(
                f"this model has no default route: pass task= one of {self.route_names} "
                "(or call encode_query / encode_document)"
            )
        return self.default_route

    def route(self, task: str | None, modality: str = "text") -> list[Module]:
        """The modules of the route a task takes, input module first."""
        return self.modules_of(self.route_name(task, modality))

    def modules_of(self, route: str) -> list[Module]:
        """The modules of a route, by its name."""
        return [module for module in self.sub_modules[route].children() if isinstance(module, Module)]

    def forward(self, features: Features) -> Features:
        """Run the route of ``features["task"]``, else the ``encode`` call's (see ``routing_task``)."""
        for module in self.route(features.get("task", ACTIVE_TASK.get())):
            features = module(features)
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the parameters saved under ``"parameters"`` in ``router_config.json``."""
        return {
            "default_route": self.default_route,
            "allow_empty_key": self.allow_empty_key,
            "route_mappings": {str(key): route for key, route in self.route_mappings.items()},
        }

    def save(self, folder: Path) -> None:
        """Write each route's modules into ``<route>_<index>_<Type>`` folders and ``router_config.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        types: dict[str, str] = {}
        structure: dict[str, list[str]] = {}
        names: dict[int, str] = {}
        for route in self.sub_modules:
            structure[route] = []
            for index, module in enumerate(self.modules_of(route)):
                name = names.setdefault(id(module), f"{route}_{index}_{type(module).__name__}")
                if name not in types:
                    module.save(folder / name)
                    types[name] = module.reference_type
                structure[route].append(name)
        config = {"types": types, "structure": structure, "parameters": self.get_config_dict()}
        write_json(folder / self.config_file_name, config)

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)


def read_router_config(folder: Path) -> tuple[dict[str, str], dict[str, list[str]], dict[str, Any]]:
    """Read ``router_config.json``: module folder to type, route to module folders, and the Router's
    parameters (with ``route_mappings`` keys back as tuples). Folder names may not leave ``folder``."""
    config = read_json(folder / ROUTER_CONFIG_FILE, missing_ok=True) or read_json(folder / "config.json")
    types, structure = config.get("types"), config.get("structure")
    if not isinstance(types, dict) or not isinstance(structure, dict):
        raise ModelFormatError(f"{folder / ROUTER_CONFIG_FILE}: expected 'types' and 'structure' objects")
    for name in types:
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ModelFormatError(
                f"{folder / ROUTER_CONFIG_FILE}: module folder {name!r} leaves the model folder"
            )
    for route, names in structure.items():
        missing = [name for name in names if name not in types]
        if missing:
            raise ModelFormatError(
                f"{folder / ROUTER_CONFIG_FILE}: route {route!r} names unknown modules {missing}"
            )
    parameters = dict(config.get("parameters") or {})
    mappings: dict[RouteKey, str] = {}
    for key, route in (parameters.get("route_mappings") or {}).items():
        try:
            parsed = ast.literal_eval(key)
        except (ValueError, SyntaxError):
            raise ModelFormatError(
                f"{folder / ROUTER_CONFIG_FILE}: route mapping key {key!r} is not a tuple"
            ) from None
        if not isinstance(parsed, tuple) or len(parsed) != 2:
            raise ModelFormatError(f"{folder / ROUTER_CONFIG_FILE}: route mapping key {key!r} is not a pair")
        mappings[parsed] = route
    parameters["route_mappings"] = mappings
    return types, structure, parameters
