"""The projector's file: what it was trained for travels with it, and a projector that cannot serve
the running LLM or the edge's tokens is refused with a message that says why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from prometheus_client import CollectorRegistry
from safetensors.torch import save_file
from support_explain import ScriptedLlm

from vau.cloud.explain.evidence import EventEvidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.facts import FrameEvidence
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.projector import (
    FrameTokenizer,
    ProjectorError,
    check_tokens,
    load_frame_tokenizer,
    projector_meta,
    save_frame_tokenizer,
)
from vau.cloud.explain.projector_choice import chosen_weights, provenance_path
from vau.cloud.explain.settings import ExplainSettings

PRIOR = "TET prior: anomalous from 2.0s to 6.0s."
REPLIES = [
    "Person in the lower centre",
    "A person appeared in the lower centre, from 2.0s to 6.0s.",
]


def _saved(tmp_path: Path, vis: int = 384, llm_dim: int = 16) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "proj.safetensors"
    save_frame_tokenizer(FrameTokenizer("linear", vis, llm_dim), path, "scripted", {"note": "t"})
    return path


def test_saved_projector_carries_what_it_fits_and_its_provenance_and_loads_back(
    tmp_path: Path,
) -> None:
    path = _saved(tmp_path)
    meta = projector_meta(path)
    assert (meta["kind"], meta["vis_dim"], meta["llm_dim"], meta["llm"]) == (
        "linear", "384", "16", "scripted",
    )  # fmt: skip
    info = json.loads(provenance_path(path).read_text("utf-8"))
    assert info["note"] == "t" and info["llm_dim"] == "16"
    model = load_frame_tokenizer(path, 16, "scripted")
    assert (model.kind, model.vis_dim, model.llm_dim) == ("linear", 384, 16)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"
    assert path.stat().st_mode & 0o777 == 0o644  # others may read it (safetensors writes 0600)


def test_projector_for_another_llm_width_is_refused_naming_both_widths(tmp_path: Path) -> None:
    path = _saved(tmp_path, llm_dim=16)
    with pytest.raises(ProjectorError, match="16 wide; the configured LLM's are 576"):
        load_frame_tokenizer(path, 576)


def test_a_weights_file_not_written_by_train_projector_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file({"projector.weight": torch.zeros(16, 384)}, str(plain))
    with pytest.raises(ProjectorError, match="not a projector written by"):
        load_frame_tokenizer(plain, 16)
    with pytest.raises(ProjectorError, match="cannot read"):
        load_frame_tokenizer(tmp_path / "missing.safetensors", 16)


def test_frames_from_another_encoder_width_turn_the_visual_tokens_off_and_are_counted(
    tmp_path: Path,
) -> None:
    tok = load_frame_tokenizer(_saved(tmp_path), 16)
    with pytest.raises(ProjectorError, match="768 wide but the projector was trained on 384"):
        check_tokens(tok, [384, 768])
    metrics = ExplainMetrics(CollectorRegistry())
    s = ExplainSettings()
    explainer = Explainer(s, ScriptedLlm(REPLIES), metrics, tok)
    frames = (FrameEvidence(3.0, 0.8, (200, 201, 216), (16, 16)),)
    ev = EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)
    wide = explainer.explain(ev, [np.ones((3, 768), np.float32)]).explanation
    assert not wide.visual_tokens and wide.projector is None
    labels = {"backend": s.backend, "kind": "projector_tokens"}
    assert metrics.value("vau_cloud_llm_errors_total", labels) == 1
    right = explainer.explain(ev, [np.ones((3, 384), np.float32)]).explanation
    assert right.visual_tokens and right.projector == "linear"


def test_the_bundled_projector_is_chosen_only_for_the_llm_it_was_trained_for(
    tmp_path: Path,
) -> None:
    bundled = _saved(tmp_path)  # trained for "scripted"
    assert chosen_weights(None, True, "scripted", bundled) == bundled
    assert chosen_weights(None, True, "qwen2.5-0.5b-instruct", bundled) is None
    assert chosen_weights(None, False, "scripted", bundled) is None
    own = tmp_path / "own.safetensors"
    assert chosen_weights(own, True, "any", bundled) == own  # explicit: checked when it loads
    assert chosen_weights(None, True, "scripted", tmp_path / "none.safetensors") is None
