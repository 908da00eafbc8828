"""Captions the projector learns from: synthetic ones from a kind and the event's facts (always
faithful to the prompt's evidence), public ones read from UCA and HIVAU-70k's conversation form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vau.cloud.explain.captions import (
    CaptionError,
    load_captions,
    named_kinds,
    synthetic_caption,
    title_of,
)
from vau.cloud.explain.evidence import (
    EventEvidence,
    evidence_lines,
    facts,
    unfaithful_numbers,
    unfaithful_places,
)
from vau.cloud.explain.facts import FrameEvidence
from vau.cloud.explain.schema import UNKNOWN

GRID = (16, 16)


def _blob(row: int, col: int) -> tuple[int, ...]:
    return tuple((row + r) * 16 + col + c for r in range(2) for c in range(2))


def _event(frames: tuple[FrameEvidence, ...]) -> EventEvidence:
    return EventEvidence("cam-0", "ev-1", 2.0, 6.5, 0.9, 4.0, "", frames, 0.1)


def _moving_right() -> EventEvidence:
    frames = tuple(
        FrameEvidence(2.0 + i, 0.8, _blob(12, 1 + 3 * i), GRID, hot=_blob(12, 1 + 3 * i))
        for i in range(4)
    )
    return _event(frames)


def _whole_view() -> EventEvidence:
    every = tuple(range(256))
    return _event(tuple(FrameEvidence(2.0 + i, 0.9, every, GRID, hot=every) for i in range(4)))


def test_intruder_caption_says_person_where_and_which_way_with_only_the_facts_words() -> None:
    f = facts(_moving_right())
    cap = synthetic_caption("intruder", f)
    assert cap is not None
    assert cap.title == f"Person in the {f.scene.where[0][0]}"
    assert "moving right" in cap.summary and "2.0s to 6.5s" in cap.summary
    evidence = " ".join(evidence_lines(f))
    text = f"{cap.title} {cap.summary}"
    assert not unfaithful_numbers(text, evidence) and not unfaithful_places(text, evidence)
    assert named_kinds(text) == {"intruder"}


def test_tamper_caption_is_a_view_change_without_a_region() -> None:
    f = facts(_whole_view())
    assert f.scene.view_change
    cap = synthetic_caption("tamper", f)
    assert cap is not None and cap.title == "Camera tampered"
    assert "most of the view changed at once" in cap.summary
    assert named_kinds(cap.summary) == {"tamper"}


def test_a_caption_follows_the_observed_category_the_prompt_gives() -> None:
    f = facts(_moving_right())
    seen = synthetic_caption("intruder", f, "Intrusion")
    assert seen == synthetic_caption("intruder", f)  # the classifier saw the kind: it is named
    unsure = synthetic_caption("intruder", f, UNKNOWN)
    assert unsure is not None and named_kinds(f"{unsure.title} {unsure.summary}") == set()
    assert unsure.summary.startswith("Something unusual appeared in the") and "moving right" in (
        unsure.summary
    )
    assert synthetic_caption("intruder", f, "Smoke") is None  # no true caption obeys that line


def test_a_probe_kind_is_captioned_with_no_kind_unless_the_classifier_named_one() -> None:
    f = facts(_moving_right())
    for observed in (None, UNKNOWN):
        cap = synthetic_caption("flood", f, observed)
        assert cap is not None and named_kinds(f"{cap.title} {cap.summary}") == set()
        assert cap.summary.startswith(f"Something unusual appeared in the {f.scene.where[0][0]}")
    assert synthetic_caption("flood", f, "Smoke") is None  # no true caption obeys that line
    whole = facts(_whole_view())
    cap = synthetic_caption("glare", whole, UNKNOWN)
    assert cap is not None and cap.title == "Anomaly: view changed"
    assert "most of the view changed at once" in cap.summary


def test_held_out_and_normal_kinds_have_no_caption() -> None:
    f = facts(_moving_right())
    assert synthetic_caption("fire", f) is None and synthetic_caption("normal", f) is None


def _videos(tmp_path: Path) -> Path:
    (tmp_path / "Arrest001_x264.mp4").write_bytes(b"")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.avi").write_bytes(b"")
    return tmp_path


def test_uca_captions_become_spans_of_the_named_videos(tmp_path: Path) -> None:
    videos = _videos(tmp_path)
    uca = {
        "Arrest001_x264": {
            "duration": 60.0,
            "timestamps": [[0.0, 5.5], [5.5, 12.0]],
            "sentences": ["A man in black walks to the car.", "Two officers hold him down."],
        }
    }
    path = tmp_path / "uca.json"
    path.write_text(json.dumps(uca))
    spans = load_captions(path, videos)
    assert [(s.video.name, s.start, s.end) for s in spans] == [
        ("Arrest001_x264.mp4", 0.0, 5.5),
        ("Arrest001_x264.mp4", 5.5, 12.0),
    ]
    assert spans[1].caption.summary == "Two officers hold him down."
    assert spans[1].caption.title == "Two officers hold him down"


def test_conversation_captions_take_the_answer_and_the_whole_video_without_timestamps(
    tmp_path: Path,
) -> None:
    videos = _videos(tmp_path)
    items = [
        {
            "video": "clips/a.avi",
            "conversations": [
                {"from": "human", "value": "<video>\nWhat happened?"},
                {"from": "gpt", "value": "A fire starts near the door. Smoke fills the hall."},
            ],
        },
        {
            "video": "clips/a.avi",
            "timestamps": [2, 4],
            "conversations": [{"from": "gpt", "value": "Nothing unusual."}],
        },
    ]
    path = tmp_path / "hivau.json"
    path.write_text(json.dumps(items))
    spans = load_captions(path, videos)
    assert (spans[0].start, spans[0].end) == (None, None)
    assert spans[0].caption.title == "A fire starts near the door"
    assert (spans[1].start, spans[1].end) == (2.0, 4.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"v": {"timestamps": [[0, 1]], "sentences": []}}, "1 timestamps and 0 sentences"),
        ({"missing": {"timestamps": [[0, 1]], "sentences": ["x"]}}, "is not in"),
        ({"Arrest001_x264": {"timestamps": [[3, 1]], "sentences": ["x"]}}, "is not a span"),
        ([{"video": "clips/a.avi", "conversations": []}], "no answer"),
        ("text", "want UCA's object"),
    ],
)
def test_malformed_caption_files_are_refused_naming_the_entry(
    tmp_path: Path, data: object, message: str
) -> None:
    videos = _videos(tmp_path)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CaptionError, match=message):
        load_captions(path, videos)


def test_a_long_caption_sentence_is_cut_at_a_word_for_the_title() -> None:
    title = title_of("word " * 40)
    assert len(title) <= 80 and title.endswith("...") and "wor..." not in title
