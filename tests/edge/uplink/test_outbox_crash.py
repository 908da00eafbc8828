"""S4: `kill -9` of a process writing and acking, many times; and two threads sharing an outbox."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vau.edge.uplink.outbox import FILENAME, Outbox, read_stats
from vau.edge.uplink.records import OutboxItem, Priority

WRITER = Path(__file__).with_name("outbox_writer.py")
KILLS = int(os.environ.get("VAU_OUTBOX_KILLS", "15"))
SEED = int(os.environ.get("VAU_OUTBOX_SEED", str(time.time_ns() % 2**32)))


@dataclass
class Ledger:
    """What the writers printed, over every run."""

    puts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    acked: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # ack returned
    acking: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # ack may have run
    last_seq: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # at last reopen
    epochs: set[int] = field(default_factory=set)

    def read(self, lines: list[str]) -> None:
        for line in lines:
            word, *args = line.split()
            if word == "EPOCH":
                self.epochs.add(int(args[0]))
                continue
            camera, seq = args[0], int(args[1])
            if word == "PUT":
                before = self.puts[camera][-1] if self.puts[camera] else 0
                assert seq > max(before, self.last_seq[camera]), f"seq {seq} reused ({camera})"
                self.puts[camera].append(seq)
            elif word == "ACKING":
                self.acking[camera] = max(self.acking[camera], seq)
            else:
                self.acked[camera] = max(self.acked[camera], seq)


def start_writer(data_dir: Path, seed: int) -> subprocess.Popen[str]:
    argv = [sys.executable, str(WRITER), str(data_dir), str(seed)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill(proc: subprocess.Popen[str]) -> list[str]:
    """SIGKILL; the complete lines it printed (a line cut by the kill is not one)."""
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the writer died by itself: {err}"
    return out.split("\n")[:-1]


def integrity(data_dir: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(data_dir / FILENAME)) as db:
        return [str(r[0]) for r in db.execute("PRAGMA integrity_check")]


def held_totals(data_dir: Path) -> tuple[int, int, int]:
    """(records, body bytes, duplicate (camera, seq) pairs) as the file holds them."""
    with contextlib.closing(sqlite3.connect(data_dir / FILENAME)) as db:
        n, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM records"
        ).fetchone()
        dups = db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM records GROUP BY camera, seq "
                          "HAVING COUNT(*) > 1)").fetchone()[0]  # fmt: skip
    return int(n), int(size), int(dups)


def check_after_crash(data_dir: Path, ledger: Ledger) -> tuple[int, int]:
    """Reopen and compare with the ledger; returns (put-but-lost, acked-but-back)."""
    assert integrity(data_dir) == ["ok"]
    with Outbox(data_dir, 2**30, 1e9) as outbox:
        assert ledger.epochs <= {outbox.epoch}, "the epoch changed"
        held = {c: {s.seq for s in outbox.pending(c, 0, 10**6)} for c in ledger.puts}
        for camera, seqs in ledger.puts.items():
            ledger.last_seq[camera] = outbox.last_seq(camera)
            assert ledger.last_seq[camera] >= max(seqs, default=0)
        stats = outbox.stats()
        lost = sum(s not in held[c] and s > ledger.acking[c]
                   for c, seqs in ledger.puts.items() for s in seqs)  # fmt: skip
        back = sum(s <= ledger.acked[c] for c, seqs in held.items() for s in seqs)
    records, size, dups = held_totals(data_dir)
    assert dups == 0 and (stats.pending, stats.bytes) == (records, size)
    assert stats.enqueued == stats.acked + stats.pending + stats.evicted + stats.expired
    return lost, back


def test_kill_9_while_writing_and_acking_loses_nothing(tmp_path: Path) -> None:
    rng, ledger = random.Random(SEED), Ledger()
    lost = back = early = 0
    start = time.monotonic()
    for run in range(KILLS):
        proc = start_writer(tmp_path, SEED + run)
        time.sleep(rng.uniform(0.05, 0.8))  # sometimes before the outbox is even open
        lines = kill(proc)
        early += not lines
        ledger.read(lines)
        run_lost, run_back = check_after_crash(tmp_path, ledger)
        lost, back = lost + run_lost, back + run_back
    written = sum(len(s) for s in ledger.puts.values())
    stats = read_stats(tmp_path)
    print(
        f"\nS4 (seed {SEED}): {KILLS} kill -9 ({early} before the first put), {written} puts "
        f"printed, {stats['acked']} acked, {stats['pending']} pending; put-but-lost {lost}, "
        f"acked-but-back {back}, duplicates 0, integrity ok; {time.monotonic() - start:.1f} s"
    )
    assert (lost, back) == (0, 0)
    assert written > 10 * KILLS and stats["acked"] > 0


def test_read_stats_works_while_another_process_writes(tmp_path: Path) -> None:
    proc = start_writer(tmp_path, SEED)
    try:
        assert proc.stdout is not None
        puts = 0
        while puts < 20:
            puts += proc.stdout.readline().startswith("PUT")
        seen = []
        for _ in range(40):
            stats = read_stats(tmp_path)
            assert stats["enqueued"] == stats["acked"] + stats["pending"] + stats["evicted"]
            seen.append(stats["enqueued"])
            time.sleep(0.01)
    finally:
        kill(proc)
    assert seen == sorted(seen) and seen[-1] > seen[0] >= 20


@dataclass
class Traffic:
    """The pipeline thread puts; the uplink thread reads pending and acks what it got."""

    outbox: Outbox
    cameras: tuple[str, ...] = ("cam-a", "cam-b", "cam-c")
    sent: dict[tuple[str, int], bytes] = field(default_factory=dict)
    got: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    done: threading.Event = field(default_factory=threading.Event)

    def produce(self, duration: float) -> None:
        rng, end = random.Random(1), time.monotonic() + duration
        while time.monotonic() < end:
            camera, body = rng.choice(self.cameras), rng.randbytes(rng.randint(100, 20_000))
            s = self.outbox.put(OutboxItem(camera, "frame", Priority.FRAME, time.time(), body))
            self.sent[(camera, s.seq)] = body
        self.done.set()

    def consume(self) -> None:
        while True:
            last_pass = self.done.is_set()
            if not sum(self._deliver(camera) for camera in self.cameras):
                if last_pass:
                    return
                time.sleep(0.002)  # the real uplink waits for a wake-up

    def _deliver(self, camera: str) -> int:
        got = self.got[camera]
        batch = self.outbox.pending(camera, got[-1] if got else 0, 50)
        for s in batch:
            assert s.body == self.sent[(camera, s.seq)]
            got.append(s.seq)
        if batch:
            self.outbox.ack(camera, self.outbox.epoch, got[-1])
        return len(batch)


def run_threads(*targets: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_concurrent_put_and_pending_ack_threads_lose_nothing(tmp_path: Path) -> None:
    duration = 3.0
    with Outbox(tmp_path, 2**30, 86400.0) as outbox:
        traffic = Traffic(outbox)
        errors = run_threads(lambda: traffic.produce(duration), traffic.consume)
        stats = outbox.stats()
    assert errors == []
    for camera in traffic.cameras:  # every record, in order, none twice
        assert traffic.got[camera] == sorted(s for c, s in traffic.sent if c == camera)
    print(
        f"\nconcurrent: {len(traffic.sent)} puts in {duration:g} s beside pending/ack threads, "
        "all delivered in order"
    )
    assert stats.enqueued == stats.acked == len(traffic.sent) > 100 and stats.pending == 0
