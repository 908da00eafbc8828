"""`vau-alerts tail --broker mqtt://HOST:PORT`: print vau alerts as they arrive, one line each
for a person, or one JSON object per line with --json. Ctrl-C exits cleanly (0); an unreachable
broker exits 2 with the reason.

Nothing from the broker reaches the terminal raw: payloads may come from records stored before
ingest refused control characters, or from any client the broker lets publish. Every printed line
passes through `printable` (unprintable characters and backslashes escaped), and a field of the
wrong type prints as `?` instead of ending the tail."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

EXIT_BROKER = 2
STOP_POLL_S = 0.1  # how soon a tail notices SIGINT / SIGTERM


def subscriptions(base: str) -> list[str]:
    return [f"{base}/+/+/event", f"{base}/+/+/explanation", f"{base}/+/status"]


def parse_broker(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"--broker must look like mqtt://HOST:PORT, not {url!r}")
    return parts.hostname, parts.port or 1883


def printable(text: str) -> str:
    """`text` with every unprintable character (controls, ESC, bidi overrides, line separators)
    escaped as \\xNN / \\uNNNN and backslashes doubled, so a line cannot move the cursor, recolour
    the terminal or forge another line."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _clock(payload: dict[str, Any]) -> str:
    when = _number(payload.get("capture_time")) or _number(payload.get("ts")) or time.time()
    try:
        return time.strftime("%H:%M:%S", time.localtime(when))
    except (OverflowError, OSError, ValueError):
        return "??:??:??"


def _span(start: Any, end: Any) -> str:
    def sec(v: Any) -> str:
        n = _number(v)
        return "?" if n is None else f"{n:.1f}s"

    return f"{sec(start)}-{'' if end is None else sec(end)}"


def format_line(topic: str, payload: dict[str, Any]) -> str:
    """One human-readable line for an alert payload."""
    device = payload.get("device_id", "?")
    where = f"{device}/{payload.get('camera', '?')}"
    if topic.endswith("/status"):
        return f"{_clock(payload)} {device} stream {str(payload.get('state', '?')).upper()}"
    if topic.endswith("/explanation"):
        conf = _number(payload.get("confidence")) or 0.0
        verdict = "anomaly" if payload.get("anomaly") else "normal"
        seen = payload.get("observed_category")  # absent from explanations made before it
        looks = f", looks like {seen}" if seen and seen != "unknown" else ""
        return (
            f"{_clock(payload)} {where} EXPLAINED {payload.get('event_id')} "
            f'"{payload.get("title", "")}" ({payload.get("category", "?")}{looks}, '
            f"threat {payload.get('threat_level', '?')}, {conf:.0%}) {verdict} "
            f"{_span(payload.get('start'), payload.get('end'))}: {payload.get('summary', '')}"
        )
    score = _number(payload.get("score"))
    score_s = "?" if score is None else f"{score:.2f}"
    # the prior's class list is for the language model; a person reads the span instead
    return (
        f"{_clock(payload)} {where} {str(payload.get('type', '?')).upper()} anomaly "
        f"{_span(payload.get('start'), payload.get('end'))} score {score_s} "
        f"event {payload.get('event_id')}"
    )


class Tail:
    def __init__(self, base: str, as_json: bool, out: TextIO) -> None:
        self.base, self.as_json, self.out = base, as_json, out
        self.error: str | None = None

    def on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            self.error = f"the broker refused the connection: {rc}"
            c.disconnect()
            return
        c.subscribe([(t, 1) for t in subscriptions(self.base)])

    def on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            print(f"# not JSON on {printable(msg.topic)}: {msg.payload[:80]!r}", file=sys.stderr)
            return
        if not isinstance(payload, dict):
            return
        if self.as_json:
            # ensure_ascii escapes every control and non-ASCII character
            line = json.dumps({"topic": msg.topic, **payload}, sort_keys=True, ensure_ascii=True)
        else:
            line = printable(format_line(msg.topic, payload))
        print(line, file=self.out, flush=True)


def tail(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        host, port = parse_broker(args.broker)
    except ValueError as exc:
        print(f"vau-alerts: {exc}", file=sys.stderr)
        return EXIT_BROKER
    t = Tail(args.base, args.json, out)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id or "")
    if args.username:
        client.username_pw_set(args.username, args.password)
    client.on_connect, client.on_message = t.on_connect, t.on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        print(
            f"vau-alerts: cannot reach the broker at {host}:{port} ({exc}); "
            "is it running, and is --broker right?",
            file=sys.stderr,
        )
        return EXIT_BROKER

    # The handler only notes the signal: it runs between two bytecodes of this thread, which may
    # hold one of paho's locks at that moment, so calling the client from it could deadlock
    # (a tail once ignored SIGINT for 10 s in CI). The network loop runs in paho's thread.
    signals: list[int] = []

    def stop(sig: int, _frame: FrameType | None) -> None:
        signals.append(sig)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    client.loop_start()
    try:
        while not signals and t.error is None:
            time.sleep(STOP_POLL_S)
    finally:
        client.disconnect()
        client.loop_stop()
    if t.error:
        print(f"vau-alerts: {t.error}", file=sys.stderr)
        return EXIT_BROKER
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vau-alerts", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tail", help="print alerts as they arrive (Ctrl-C to stop)")
    t.add_argument("--broker", required=True, help="mqtt://HOST:PORT of the broker")
    t.add_argument("--base", default="vau", help="base topic (the cloud's mqtt.base_topic)")
    t.add_argument("--json", action="store_true", help="one JSON object per line (with topic)")
    t.add_argument("--username", help="broker user name")
    t.add_argument("--password", help="broker password")
    t.add_argument("--client-id", default="", help="MQTT client id (default: random)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return tail(args)


if __name__ == "__main__":
    sys.exit(main())
