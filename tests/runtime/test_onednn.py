"""oneDNN linear layers: same numbers as ``nn.Linear`` to float32 rounding, torch's path elsewhere."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from omniembed.runtime import onednn
from omniembed.runtime.onednn import OneDnnLinear, OneDnnLinearGelu, onednn_available, use_onednn_linear

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")


def swapped(layer: nn.Linear) -> nn.Linear:
    model = nn.Sequential(layer)
    assert use_onednn_linear(model) == 1
    assert type(model[0]) is OneDnnLinear
    return model[0]


@pytest.mark.parametrize("shape", [(5, 16), (3, 7, 16), (2, 3, 4, 16)])
@pytest.mark.parametrize("bias", [True, False])
def test_onednn_linear_matches_torch(shape: tuple[int, ...], bias: bool) -> None:
    torch.manual_seed(0)
    plain = nn.Linear(16, 24, bias=bias)
    inputs = torch.randn(*shape)
    with torch.inference_mode():
        expected = plain(inputs)
        fast = swapped(plain)
        result = fast(inputs)
    assert result.shape == expected.shape
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


def test_state_dict_and_gradients_are_unchanged() -> None:
    torch.manual_seed(0)
    plain = nn.Linear(8, 4)
    state = {name: value.clone() for name, value in plain.state_dict().items()}
    fast = swapped(plain)
    assert fast.state_dict().keys() == state.keys()
    for name, value in fast.state_dict().items():
        assert torch.equal(value, state[name])
    inputs = torch.randn(3, 8, requires_grad=True)
    fast(inputs).sum().backward()  # grad mode takes torch's own path, which can differentiate
    assert inputs.grad is not None
    assert fast.weight.grad is not None


def test_bfloat16_matches_torch_and_other_dtypes_take_torchs_path() -> None:
    torch.manual_seed(0)
    plain = nn.Linear(16, 8).to(torch.bfloat16)
    inputs = torch.randn(5, 16, dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = plain(inputs)
        fast = swapped(plain)
        result = fast(inputs)
        assert result.dtype == torch.bfloat16
        torch.testing.assert_close(result, expected, rtol=1e-2, atol=1e-2)
        fast.to(torch.float64)
        assert fast(inputs.double()).dtype == torch.float64


def test_only_plain_linear_layers_change() -> None:
    class Custom(nn.Linear):
        pass

    model = nn.Sequential(nn.Linear(4, 4), Custom(4, 4), nn.ReLU())
    assert use_onednn_linear(model) == 1
    assert type(model[1]) is Custom


def test_changed_weights_are_used() -> None:
    torch.manual_seed(0)
    fast = swapped(nn.Linear(8, 4))
    inputs = torch.randn(2, 8)
    with torch.inference_mode():
        before = fast(inputs)
    with torch.no_grad():
        fast.weight.mul_(2)
    with torch.inference_mode():
        after = fast(inputs)
    torch.testing.assert_close(after - fast.bias, 2 * (before - fast.bias), rtol=1e-5, atol=1e-5)
    fast.load_state_dict({"weight": torch.zeros(4, 8), "bias": torch.ones(4)})
    with torch.inference_mode():
        assert torch.equal(fast(inputs), torch.ones(2, 4))


def test_pickles_without_the_reordered_weights() -> None:
    fast = swapped(nn.Linear(8, 4))
    inputs = torch.randn(2, 8)
    with torch.inference_mode():
        expected = fast(inputs)
    copy = pickle.loads(pickle.dumps(fast))
    with torch.inference_mode():
        torch.testing.assert_close(copy(inputs), expected)


def test_large_weights_are_not_kept_twice() -> None:
    torch.manual_seed(0)
    plain = nn.Linear(4096, 1025)  # 16.8 MB of float32 weights
    assert plain.weight.numel() * 4 > onednn.PACK_MAX_BYTES
    inputs = torch.randn(3, 4096)
    with torch.inference_mode():
        expected = plain(inputs)
        fast = swapped(plain)
        torch.testing.assert_close(fast(inputs), expected, rtol=1e-4, atol=1e-4)
    assert fast._packed is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_feed_forward_gelu_is_fused_with_the_same_numbers(dtype: torch.dtype) -> None:
    from transformers.activations import ACT2FN

    class Intermediate(nn.Module):  # the BERT family's feed-forward layout
        def __init__(self, activation: nn.Module) -> None:
            super().__init__()
            self.dense = nn.Linear(16, 64)
            self.intermediate_act_fn = activation

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.intermediate_act_fn(self.dense(x))  # type: ignore[no-any-return]

    torch.manual_seed(0)
    exact, tanh = Intermediate(ACT2FN["gelu"]).to(dtype), Intermediate(ACT2FN["gelu_new"]).to(dtype)
    inputs = torch.randn(3, 5, 16, dtype=dtype)
    with torch.inference_mode():
        expected = exact(inputs)
        expected_tanh = tanh(inputs)
        use_onednn_linear(exact)
        use_onednn_linear(tanh)
        assert type(exact.dense) is OneDnnLinearGelu
        assert isinstance(exact.intermediate_act_fn, nn.Identity)
        assert type(tanh.dense) is OneDnnLinear  # only the exact GELU is fused
        tolerance = 1e-5 if dtype == torch.float32 else 2e-2
        torch.testing.assert_close(exact(inputs), expected, rtol=tolerance, atol=tolerance)
        torch.testing.assert_close(tanh(inputs), expected_tanh, rtol=tolerance, atol=tolerance)
    # Outside oneDNN (gradients on) the fused layer still applies its GELU.
    torch.testing.assert_close(exact(inputs).detach(), expected, rtol=tolerance, atol=tolerance)
