"""Footage -> edge -> cloud -> MQTT, end to end: real `vau-edge run`, `vau-cloud serve` with the
SmolLM2 explainer, a real Mosquitto and a paho subscriber. The subscriber must see the event's
fast-path alert, then a schema-valid explanation with the same event id and a time span that
overlaps the injected anomaly; the fast path's latency is printed."""

from __future__ import annotations

import time
from pathlib import Path

from support.mosquitto import Mosquitto, Subscriber, require_mosquitto
from support.procs import CloudProcess, edge_run

from vau.cloud.explain.schema import Explanation
from vau.edge.synth import make_clip

SPAN = (8.0, 16.0)
EXPLANATION_KEYS = {
    "schema", "event_id", "device_id", "camera", "title", "summary", "anomaly", "category",
    "start", "end", "confidence", "threat_level", "visual_tokens",
}  # fmt: skip


def test_event_then_explanation_reach_an_mqtt_subscriber(vtest_path: Path, tmp_path: Path) -> None:
    require_mosquitto()
    clip = make_clip(vtest_path, tmp_path / "tamper.avi", "tamper", SPAN, 24.0).path
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker, ["vau/+/+/event", "vau/+/+/explanation"])
    env = {"VAU_CLOUD__MQTT__HOST": "127.0.0.1", "VAU_CLOUD__MQTT__PORT": str(broker.port),
           "VAU_CLOUD__EXPLAIN__ENABLED": "true", "VAU_CLOUD__EXPLAIN__MAX_NEW_TOKENS": "32",
           "VAU_CLOUD__EXPLAIN__WINDOW_WAIT_S": "3"}  # fmt: skip
    cloud = CloudProcess(tmp_path / "cloud", env=env).start()
    try:
        time.sleep(6.0)  # the cloud loads the language model before it tails the store
        started = time.monotonic()
        edge = edge_run(clip, f"127.0.0.1:{cloud.port}", tmp_path / "edge")
        got_new = sub.wait_for(lambda s: any(p["type"] == "new" for p in s.payloads("/event")), 120)
        seen_at = time.time()
        assert got_new, f"no event alert; cloud log: {cloud.log.read_text()[-3000:]}"
        new = next(p for p in sub.payloads("/event") if p["type"] == "new")
        latency = seen_at - float(new["capture_time"])  # type: ignore[arg-type]
        print(f"fast path: edge saw the event -> MQTT subscriber in {latency:.2f}s "
              f"({time.monotonic() - started:.1f}s after the edge process started)")  # fmt: skip
        assert latency < 2.0
        _, err = edge.communicate(timeout=240)
        assert edge.returncode == 0, err[-3000:]
        assert sub.wait_for(lambda s: bool(s.payloads("/explanation")), 120), (
            f"no explanation; cloud log: {cloud.log.read_text()[-3000:]}"
        )
    finally:
        cloud.stop()
        sub.close()
        broker.stop()
    explanation = sub.payloads("/explanation")[0]
    print(f"explanation: {explanation}")
    assert set(explanation) >= EXPLANATION_KEYS
    assert explanation["event_id"] == new["event_id"] and explanation["device_id"] == "edge-test"
    fields = {k: explanation[k] for k in Explanation.model_fields if k in explanation}
    Explanation.model_validate(fields)  # schema-valid
    start, end = float(explanation["start"]), float(explanation["end"])  # type: ignore[arg-type]
    assert start < SPAN[1] and end > SPAN[0], "explained span overlaps the injected anomaly"
