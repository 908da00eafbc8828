"""The TETG head: NumPy inference equals its torch twin; saving, loading and dimension checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vau.edge.tetg import (
    WEIGHTS,
    AnomalyHead,
    HeadConfig,
    HeadError,
    from_torch,
    load_head,
    save_head,
    torch_module,
)


def _random_head(embed_dim: int = 384, hidden: int = 32) -> tuple[HeadConfig, torch.nn.Module]:
    torch.manual_seed(0)
    config = HeadConfig(embed_dim=embed_dim, hidden=hidden)
    return config, torch_module(config).eval()


def test_numpy_head_matches_torch_module_probabilities() -> None:
    config, module = _random_head()
    head = from_torch(config, module)
    z = np.random.default_rng(0).normal(size=(16, 384)).astype(np.float32)
    with torch.no_grad():
        expected = torch.sigmoid(module(torch.from_numpy(z)))[:, 0].numpy()
    np.testing.assert_allclose(head.score(z), expected, atol=1e-6)
    assert head.score(z[0]).shape == ()
    assert np.all((head.score(z) >= 0) & (head.score(z) <= 1))


def test_saved_head_loads_back_identically(tmp_path: Path) -> None:
    config, module = _random_head()
    head = from_torch(config, module)
    save_head(head, tmp_path / "h")
    again = load_head(tmp_path / "h")
    z = np.random.default_rng(1).normal(size=(4, 384)).astype(np.float32)
    np.testing.assert_array_equal(again.score(z), head.score(z))
    assert again.config == config
    # readable by the box's other users, like the JSON beside it (safetensors writes 0600)
    assert (tmp_path / "h" / WEIGHTS).stat().st_mode & 0o777 == 0o644


def test_head_for_other_encoder_width_is_refused_with_the_fix() -> None:
    config, module = _random_head(embed_dim=768)
    head = from_torch(config, module)
    with pytest.raises(HeadError, match=r"768-d .* encoder gives 384-d.*train-head"):
        head.check_encoder(384, 224)
    with pytest.raises(HeadError, match="trained at 224px"):
        from_torch(*_random_head()).check_encoder(384, 448)


def test_tensor_with_wrong_shape_is_refused() -> None:
    config = HeadConfig(embed_dim=8, hidden=4)
    bad = {"w1": np.zeros((8, 5), np.float32), "b1": np.zeros(4, np.float32),
           "w2": np.zeros((4, 1), np.float32), "b2": np.zeros(1, np.float32)}  # fmt: skip
    with pytest.raises(HeadError, match=r"w1 should be \(8, 4\)"):
        AnomalyHead(config, bad)


def test_missing_or_corrupt_head_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HeadError, match="no TETG head"):
        load_head(tmp_path / "absent")
    save_head(from_torch(*_random_head()), tmp_path / "h")
    (tmp_path / "h" / "head.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(HeadError, match="unreadable"):
        load_head(tmp_path / "h")


def test_bundled_default_head_loads_and_fits_the_default_encoder() -> None:
    head = load_head("default")
    head.check_encoder(384, 224)
    assert head.config.provenance, "the default head must record how it was trained"
