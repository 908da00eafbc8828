"""A real Mosquitto broker for tests: `/usr/sbin/mosquitto -c CONF` on a free loopback port with a
generated config (persistence in a temp dir; anonymous, or a password file + ACL file)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def require_mosquitto() -> None:
    if not Path(MOSQUITTO).is_file():
        pytest.skip("mosquitto is not installed (CI installs it: apt-get install mosquitto)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """One broker; stop()/start() keep its port and persistence (a broker restart)."""

    def __init__(
        self, workdir: Path, users: dict[str, str] | None = None, acl: str | None = None
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.dir}/",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        ]
        if users is None:
            lines.append("allow_anonymous true")
        else:
            pwfile = self.dir / "passwords"
            for i, (user, password) in enumerate(users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run(
                    [MOSQUITTO_PASSWD, *flags, str(pwfile), user, password],
                    check=True, capture_output=True,
                )  # fmt: skip
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        if acl is not None:
            aclfile = self.dir / "acl"
            aclfile.write_text(acl)
            lines.append(f"acl_file {aclfile}")
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err}{self._log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self._log_tail()}")

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence (sessions, queued messages) and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.is_file() else ""


class Subscriber:
    """A real paho subscriber collecting (topic, payload, retain) in arrival order."""

    def __init__(
        self,
        broker: Mosquitto,
        topics: list[str],
        client_id: str = "",
        persistent: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self.suback: list[int] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.reconnect_delay_set(1, 1)

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
            c.subscribe([(t, 1) for t in topics])

        def on_subscribe(
            _c: mqtt.Client, _u: object, _m: int, codes: list[object], _p: object
        ) -> None:
            self.suback = [int(getattr(x, "value", x)) for x in codes]  # type: ignore[call-overload]
            self._subscribed.set()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

        self.client.on_connect, self.client.on_subscribe = on_connect, on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=5)
        self.client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK within 10 s"

    def payloads(self, suffix: str = "") -> list[dict[str, object]]:
        import json

        with self._lock:
            found = [m for m in self.messages if m[0].endswith(suffix)]
        return [json.loads(p) for _t, p, _r in found]

    def wait_for(self, predicate: Callable[[Subscriber], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
