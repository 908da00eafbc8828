"""Hysteresis, smoothing, minimum duration, merge gap and priors of the event tracker."""

from __future__ import annotations

from vau.edge.events import EventTracker, prior_sentence
from vau.edge.settings import EventSettings
from vau.edge.types import EventState, EventUpdate

RAW = EventSettings(smoothing=1.0, enter=0.6, exit=0.4, min_duration_s=1.0, merge_gap_s=1.0,
                    update_every_s=100.0)  # fmt: skip


def _feed(tracker: EventTracker, scores: list[float], dt: float = 0.5) -> list[EventUpdate]:
    out: list[EventUpdate] = []
    for i, s in enumerate(scores):
        out += tracker.observe(i, i * dt, s)[1]
    return out + tracker.flush((len(scores) - 1) * dt)


def test_event_opens_at_enter_and_closes_after_merge_gap_below_exit() -> None:
    # t:     0    .5   1    1.5  2    2.5  3    3.5  4    4.5
    scores = [0.1, 0.7, 0.7, 0.7, 0.5, 0.3, 0.3, 0.3, 0.1, 0.1]
    ups = _feed(EventTracker(RAW, "cam", run_id="r"), scores)
    assert [u.state for u in ups] == [EventState.NEW, EventState.END]
    new, end = ups
    assert new.id == end.id == "cam-r-0001"
    assert new.start == 0.5 and new.end is None
    assert end.start == 0.5 and end.end == 2.0  # last frame at or above exit
    assert end.peak == 0.7


def test_score_between_exit_and_enter_neither_opens_nor_closes() -> None:
    assert _feed(EventTracker(RAW, "cam"), [0.5] * 20) == []
    ups = _feed(EventTracker(RAW, "cam"), [0.9, 0.9, 0.9] + [0.5] * 10)
    assert [u.state for u in ups] == [EventState.NEW, EventState.END]
    assert ups[-1].end == 6.0  # held open by the 0.5s, closed only by end of stream


def test_short_spike_is_discarded_and_counted() -> None:
    tracker = EventTracker(RAW, "cam")
    assert _feed(tracker, [0.1, 0.9, 0.1, 0.1, 0.1, 0.1]) == []
    assert tracker.discarded == 1


def test_two_bursts_within_merge_gap_are_one_event() -> None:
    scores = [0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1]
    ups = _feed(EventTracker(RAW, "cam"), scores)
    assert [u.state for u in ups] == [EventState.NEW, EventState.END]
    assert ups[-1].start == 0.0 and ups[-1].end == 3.0


def test_bursts_further_apart_than_merge_gap_are_two_events_with_distinct_ids() -> None:
    scores = [0.9] * 4 + [0.1] * 6 + [0.9] * 4 + [0.1] * 6
    ups = _feed(EventTracker(RAW, "cam"), scores)
    assert [u.state for u in ups] == [EventState.NEW, EventState.END] * 2
    assert ups[0].id != ups[2].id


def test_open_event_reports_updates_periodically() -> None:
    cfg = RAW.model_copy(update={"update_every_s": 2.0})
    ups = _feed(EventTracker(cfg, "cam"), [0.9] * 12 + [0.1] * 5)
    states = [u.state for u in ups]
    assert states[0] is EventState.NEW and states[-1] is EventState.END
    assert states.count(EventState.UPDATE) == 2  # at t = 3.0 and 5.0 after NEW at t = 1.0


def test_smoothing_suppresses_a_single_frame_spike() -> None:
    cfg = RAW.model_copy(update={"smoothing": 0.3, "min_duration_s": 0.0})
    assert _feed(EventTracker(cfg, "cam"), [0.0, 0.0, 1.0, 0.0, 0.0]) == []


def test_prior_sentence_names_classes_and_span() -> None:
    s = prior_sentence(["Arson", "Fighting"], 12.25, 18.0)
    assert s == (
        "Known common anomaly types are: 'Arson', 'Fighting'. "
        "There is one of the anomaly types occurring from 12.2s to 18.0s."
    )
    assert "onwards" in prior_sentence(["Arson"], 3.0, None)


def test_end_record_carries_prior_with_the_span() -> None:
    ups = _feed(EventTracker(RAW, "cam"), [0.9] * 5 + [0.1] * 5)
    assert "from 0.0s to 2.0s" in ups[-1].prior
