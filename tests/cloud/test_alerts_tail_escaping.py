"""X5, defence in depth: `vau-alerts tail` never prints a control character it received, whoever
published it (records stored before ingest refused them, or any client the broker lets publish)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from support.mosquitto import Mosquitto, require_mosquitto

from vau.cloud.alerts_cli import format_line, printable

ALERTS = [sys.executable, "-m", "vau.cloud.alerts_cli"]
HOSTILE = {
    "schema": "vau.alert/1",
    "type": "new\x1b[2J",
    "device_id": "edge-1\x00",
    "camera": "cam-0\r",
    "event_id": "ev-1\n12:00:00 edge-1/cam-0 END anomaly 1.0s-2.0s score 0.10 event ev-1\x1b[31m",
    "start": 1.0,
    "end": None,
    "score": "0.9\x07",  # wrong type: printed as "?", the tail keeps running
    "ts": 1.0,
}
GOOD = {
    "schema": "vau.alert/1",
    "type": "end",
    "device_id": "edge-1",
    "camera": "cam-0",
    "event_id": "ev-2",
    "start": 1.0,
    "end": 2.0,
    "score": 0.5,
    "ts": 2.0,
}


def _publish(broker: Mosquitto, topic: str, payload: dict[str, object], retain: bool) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(topic, json.dumps(payload).encode(), qos=1, retain=retain).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _tail_lines(broker: Mosquitto, *extra: str) -> tuple[bytes, bytes]:
    """The tail's lines for a hostile alert (retained, so it arrives once subscribed) and then a
    good one published after it: the tail is still running."""
    _publish(broker, "vau/edge-1/cam-0/event", HOSTILE, retain=True)
    proc = subprocess.Popen(
        [*ALERTS, "tail", "--broker", broker.url, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        _publish(broker, "vau/edge-1/cam-1/event", GOOD, retain=False)
        second = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        return first, second
    finally:
        proc.kill()


def _raw_controls(line: bytes) -> bool:
    return any(b < 0x20 or b == 0x7F for b in line.rstrip(b"\n"))


def test_event_id_with_control_characters_is_escaped_by_alerts_tail(tmp_path: Path) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        first, second = _tail_lines(broker)
    finally:
        broker.stop()
    # one line per alert: the forged "END" line stays inside the first, escaped
    assert first.endswith(b"\n") and not _raw_controls(first), first
    assert b"\\x1b[2J" in first and b"\\x0a12:00:00" in first and b"score ?" in first
    assert b"edge-1/cam-0 END anomaly 1.0s-2.0s score 0.50 event ev-2" in second


def test_event_id_with_control_characters_is_escaped_by_alerts_tail_json(tmp_path: Path) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        first, second = _tail_lines(broker, "--json")
    finally:
        broker.stop()
    assert not _raw_controls(first), first
    assert json.loads(first)["event_id"] == HOSTILE["event_id"]  # escaped, not lost
    assert json.loads(second)["event_id"] == "ev-2"


def test_printable_escapes_controls_bidi_and_backslashes_and_keeps_text() -> None:
    assert printable("Two people fight near the door. Café 87%") == (
        "Two people fight near the door. Café 87%"
    )
    assert printable("a\x00b\nc\x1bd\u202ee\u2028f\x9bg\\x1b") == (
        "a\\x00b\\x0ac\\x1bd\\u202ee\\u2028f\\x9bg\\\\x1b"
    )
    line = format_line("vau/e/c/explanation", {"confidence": "high", "summary": "x", "ts": "y"})
    assert "0%" in line  # wrong types print as defaults instead of ending the tail
