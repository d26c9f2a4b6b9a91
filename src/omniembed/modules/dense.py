"""A linear layer with an activation, applied to the pooled vector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from omniembed.errors import ModelFormatError
from omniembed.modules.module import Features, LoadOptions, Module, load_weights, read_json

# Activations a model folder may name. Anything else is refused rather than imported.
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (
        nn.Identity, nn.Tanh, nn.ReLU, nn.GELU, nn.Sigmoid, nn.SiLU, nn.LeakyReLU, nn.ELU,
        nn.Softplus, nn.Mish, nn.Hardtanh, nn.Softsign, nn.Tanhshrink,
    )
}  # fmt: skip


class Dense(Module):
    """``activation(linear(x))`` on ``features[module_input_name]``.

    Args:
        in_features: input width.
        out_features: output width.
        bias: whether the linear layer has a bias.
        activation_function: a ``torch.nn`` activation module (default ``Tanh``, as saved models expect).
        module_input_name: the feature to read.
        module_output_name: the feature to write (defaults to the input name).
    """

    config_keys = ("in_features", "out_features", "bias", "activation_function")
    reference_type = "sentence_transformers.base.modules.dense.Dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: nn.Module | None = None,
        module_input_name: str = "sentence_embedding",
        module_output_name: str | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.bias = bias
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation = nn.Tanh() if activation_function is None else activation_function
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name

    def forward(self, features: Features) -> Features:
        """Project the input feature (cast to the weights' type: a ``Normalize`` before it returns
        float32 from a bfloat16 network)."""
        input = features[self.module_input_name].to(self.linear.weight.dtype)
        features[self.module_output_name] = self.activation(self.linear(input))
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the config with the activation as the dotted class path the reference expects."""
        activation = type(self.activation)
        config = {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "activation_function": f"{activation.__module__}.{activation.__name__}",
        }
        if self.module_input_name != "sentence_embedding":
            config["module_input_name"] = self.module_input_name
        if self.module_output_name != self.module_input_name:
            config["module_output_name"] = self.module_output_name
        return config

    def save(self, folder: Path) -> None:
        """Write ``config.json`` and ``model.safetensors``."""
        from safetensors.torch import save_file

        super().save(folder)
        state = {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Dense:
        """Read the config and the weights."""
        path = folder / cls.config_file_name
        config = read_json(path)
        try:
            module = cls(
                in_features=int(config["in_features"]),
                out_features=int(config["out_features"]),
                bias=bool(config.get("bias", True)),
                activation_function=_activation(config.get("activation_function"), path),
                module_input_name=config.get("module_input_name", "sentence_embedding"),
                module_output_name=config.get("module_output_name"),
            )
        except KeyError as error:
            raise ModelFormatError(f"{path} lacks the key {error.args[0]!r}") from error
        if config.get("use_residual"):
            raise ModelFormatError(f"{path}: Dense with use_residual is not supported yet")
        load_weights(module, folder, options)
        return module


def _activation(dotted: str | None, path: Path) -> nn.Module:
    """Instantiate the named ``torch.nn`` activation, refusing anything outside the allow-list."""
    if dotted is None:
        return nn.Tanh()
    name = dotted.rsplit(".", 1)[-1]
    if not dotted.startswith("torch.") or name not in _ACTIVATIONS:
        raise ModelFormatError(
            f"{path}: activation_function {dotted!r} is not one of the supported torch.nn activations "
            f"{sorted(_ACTIVATIONS)}"
        )
    return _ACTIVATIONS[name]()
