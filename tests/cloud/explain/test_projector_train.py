"""`vau-cloud train-projector` on real footage and public-form captions: the real edge pipeline
(DINOv2, SETS) makes the frames, the real SmolLM2 stays frozen while the projector learns, the
file it writes is one the explainer loads and runs with visual tokens on."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vau.cloud.cli import main
from vau.cloud.explain.chain import EdgeCapture, run_edge, span_event
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.llm_transformers import TransformersLlm
from vau.cloud.explain.projector import load_frame_tokenizer, projector_meta
from vau.cloud.explain.projector_choice import provenance_path
from vau.cloud.explain.settings import ExplainSettings
from vau.edge.analysers import build_analyser
from vau.edge.settings import EdgeSettings
from vau.edge.tetg import load_head

pytestmark = pytest.mark.slow
SECONDS = 8.0


def _cut(src: Path, dst: Path, seconds: float) -> Path:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    ok, frame = cap.read()
    h, w = frame.shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for _ in range(int(seconds * fps)):
        if not ok:
            break
        out.write(frame)
        ok, frame = cap.read()
    out.release()
    cap.release()
    return dst


@pytest.fixture(scope="module")
def videos(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    _cut(vtest_path, folder / "walkway.avi", SECONDS)
    return folder


def test_train_projector_on_uca_captions_writes_weights_the_explainer_runs_with(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uca = {
        "walkway": {
            "duration": SECONDS,
            "timestamps": [[0.0, 4.0], [4.0, 8.0]],
            "sentences": [
                "People walk along the walkway in both directions.",
                "A man in a dark coat walks towards the camera.",
            ],
        }
    }
    captions = tmp_path / "uca.json"
    captions.write_text(json.dumps(uca))
    out = tmp_path / "projector.safetensors"
    args = ["train-projector", "--captions", str(captions), "--videos", str(videos)]
    assert main([*args, "--out", str(out), "--epochs", "3", "--note", "test"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["samples"] == 2 and report["llm"] == "smollm2-135m-instruct"
    before, after = report["loss_before"]["train"], report["loss_after"]["train"]
    assert np.isfinite(after) and after < before, "the caption loss fell on what it trained on"
    meta = projector_meta(out)
    assert (meta["kind"], meta["vis_dim"], meta["llm_dim"]) == ("mlp2x_gelu", "384", "576")
    info = json.loads(provenance_path(out).read_text("utf-8"))
    assert info["samples_per_label"] == {"walkway": 2} and info["note"] == "test"
    assert info["trained_on"] == str(captions) and len(info["training"]["epochs"]) == 3

    llm = TransformersLlm("smollm2-135m-instruct")
    tok = load_frame_tokenizer(out, llm.hidden_size, llm.model_id)
    edge = EdgeSettings(camera_id="walkway")
    analyser = build_analyser(edge)
    try:
        dim = load_head(edge.head.path).config.embed_dim
        capture = run_edge(videos / "walkway.avi", edge, analyser, dim, EdgeCapture())
    finally:
        analyser.close()
    event = span_event(capture, "walkway", edge, (4.0, 8.0), 4)
    assert event is not None and len(event.tokens) == 4
    s = ExplainSettings(max_new_tokens=24)
    result = Explainer(s, llm, frame_tokenizer=tok).explain(event.evidence, event.tokens)
    ex = result.explanation
    assert ex.visual_tokens and ex.projector == "mlp2x_gelu"
    assert result.outcome in ("llm", "retry", "fallback") and ex.title


def test_train_projector_without_its_data_folder_exits_2(tmp_path: Path) -> None:
    args = ["train-projector", "--captions", str(tmp_path / "c.json"), "--out", str(tmp_path)]
    assert main(args) == 2


def test_train_projector_with_a_manifest_but_no_models_for_it_exits_2(tmp_path: Path) -> None:
    m = str(tmp_path / "m.jsonl")
    args = ["train-projector", "--manifest", m, "--manifest", m, "--models", str(tmp_path)]
    assert main([*args, "--out", str(tmp_path / "p.safetensors")]) == 2
