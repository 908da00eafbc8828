"""The rebuilt DINOv2 artefacts: torch folder vs ONNX encoder parity, ONNX interface."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from transformers import Dinov2Model

from vau.assets import Manifest, asset_path
from vau.assets.dinov2_parity import check_parity, onnx_hidden, parity_input


@pytest.fixture(scope="module")
def torch_model(pulled_cache: object) -> Dinov2Model:
    model: Dinov2Model = Dinov2Model.from_pretrained(asset_path("dinov2-s14"))
    model.train(False)
    return model


def test_rebuilt_torch_model_matches_onnx_backbone_on_a_vtest_frame(
    torch_model: Dinov2Model, record_property: Callable[[str, object], None]
) -> None:
    parity = check_parity(torch_model, asset_path("dinov2-s14-onnx"), asset_path("vtest.avi"))

    record_property("max_abs_diff", parity.max_abs_diff)
    record_property("cls_cosine", parity.cls_cosine)
    print(
        f"torch vs onnx on {parity.input_source}: max_abs_diff={parity.max_abs_diff:.3g} "
        f"cls_cosine={parity.cls_cosine:.8f}"
    )
    assert parity.input_source == "vtest.avi#100"
    assert parity.max_abs_diff < 1e-3
    assert parity.inner_max_abs_diff < 1e-3
    assert parity.cls_cosine > 0.9999


def test_pull_recorded_the_parity_figures(pulled_manifest: Manifest) -> None:
    details = pulled_manifest.assets["dinov2-s14-onnx"].details
    assert float(details["parity_max_abs_diff"]) < 1e-3
    assert float(details["parity_inner_max_abs_diff"]) < 1e-3
    assert details["parity_input"] == "vtest.avi#100"


def test_onnx_encoder_has_pixel_values_input_and_last_and_inner_hidden_state_outputs(
    pulled_cache: object,
) -> None:
    model = onnx.load_model(str(asset_path("dinov2-s14-onnx")), load_external_data=False)

    (inp,) = model.graph.input
    last, inner = model.graph.output
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, last.name, inner.name) == (
        "pixel_values",
        "last_hidden_state",
        "inner_hidden_state",
    )
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert in_dims == ["batch", 3, 224, 224]
    for out in (last, inner):
        assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == [
            "batch",
            257,
            384,
        ]


def test_a_cache_made_by_an_older_recipe_is_rebuilt_by_pull(pulled_manifest: Manifest) -> None:
    from vau.assets.pull import _group_problems

    record = pulled_manifest.assets["dinov2-s14-onnx"]
    old = record.model_copy(update={"details": {**record.details, "recipe": 1}})
    manifest = pulled_manifest.with_records([old])
    problems = _group_problems(manifest, "dinov2", asset_path("dinov2-s14-onnx").parent)
    assert any("made by recipe 1, this version's is 2" in p for p in problems)


def test_onnx_encoder_runs_a_batch_of_two_like_two_batches_of_one(pulled_cache: object) -> None:
    path = asset_path("dinov2-s14-onnx")
    pixels, _ = parity_input(None)
    batch = np.concatenate([pixels, pixels[:, :, ::-1].copy()], axis=0)

    together = onnx_hidden(path, batch)
    second = onnx_hidden(path, batch[1:])

    for both, one in zip(together, second, strict=True):
        assert both.shape == (2, 257, 384)
        np.testing.assert_allclose(both[1:], one, atol=1e-5)


def test_onnx_encoder_holds_its_weights_inside_the_file(pulled_cache: object) -> None:
    path = asset_path("dinov2-s14-onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    assert [i.name for i in session.get_inputs()] == ["pixel_values"]
    assert not list(path.parent.glob(f"{path.name}.data"))
    assert path.stat().st_size > 80_000_000


def test_rebuilt_folder_has_the_dinov2_small_geometry(torch_model: Dinov2Model) -> None:
    config = torch_model.config
    geometry = (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.patch_size,
        config.image_size,
        config.layer_norm_eps,
    )
    assert geometry == (384, 12, 6, 14, 518, 1e-6)
    assert sum(p.numel() for p in torch_model.parameters()) == pytest.approx(22.06e6, rel=1e-3)
