"""Replicas on one PostgreSQL (support.postgres: a real server): singleton roles as session
advisory locks, explanation claims (FOR UPDATE SKIP LOCKED with an expiry) and the shared alert
outbox; and the SQLite store, whose one process holds every role and claim."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.postgres import PostgresServer, start_postgres

from vau.cloud.metrics import CloudMetrics
from vau.cloud.mqtt.outbox import Outbox
from vau.cloud.replicas import Roles
from vau.cloud.storage.alert_outbox import AlertOutbox
from vau.cloud.storage.factory import open_storage
from vau.cloud.storage.leases import LocalLeases, PgLeases, lock_key
from vau.cloud.storage.pg_alerts import PgAlertOutbox
from vau.cloud.storage.pg_events import PgEventRepository
from vau.cloud.storage.sqlite_events import SqliteEventRepository

ROLES = ("projector", "mqtt", "retention")


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


@pytest.fixture
def url(postgres_server: PostgresServer, tmp_path: Path) -> str:
    db = postgres_server.create_database()
    open_storage(db, tmp_path, 86_400.0)  # creates the tables
    return db


def test_role_lock_keys_are_distinct_and_apart_from_the_append_lock() -> None:
    keys = {lock_key(r) for r in ROLES}
    assert len(keys) == 3 and 0x7661750001 not in keys


def test_pg_leases_when_two_replicas_ask_then_each_role_has_one_holder(url: str) -> None:
    a, b = PgLeases(url), PgLeases(url)
    try:
        assert [a.acquire(r) for r in ROLES] == [True] * 3
        assert [b.acquire(r) for r in ROLES] == [False] * 3
        assert a.check(ROLES) == set(ROLES) and b.check(ROLES) == set()
        a.release("mqtt")
        assert b.acquire("mqtt") and not a.acquire("mqtt")
        a.close()  # the session ends: its locks go with it
        assert b.acquire("projector") and b.acquire("retention")
    finally:
        a.close()
        b.close()


def test_pg_leases_when_the_holders_session_is_killed_then_it_sees_the_loss(url: str) -> None:
    a, b = PgLeases(url), PgLeases(url)
    try:
        assert a.acquire("mqtt")
        with psycopg.connect(url, autocommit=True) as admin:
            pids = admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
                (lock_key("mqtt") & 0xFFFFFFFF,),
            ).fetchall()
            assert len(pids) == 1
            admin.execute("SELECT pg_terminate_backend(%s)", pids[0])
        assert a.check(["mqtt"]) == set()  # lost, and it knows
        assert b.acquire("mqtt")
        assert not a.acquire("mqtt")  # a fresh session, but b holds it now
    finally:
        a.close()
        b.close()


def test_local_leases_when_sqlite_then_the_one_process_holds_every_role() -> None:
    leases = LocalLeases()
    assert all(leases.acquire(r) for r in ROLES) and leases.check(ROLES) == set(ROLES)


def test_pg_claims_when_two_replicas_race_then_each_trigger_is_claimed_once(url: str) -> None:
    setup = PgEventRepository(url)
    keys = [("dev", "cam-0", f"ev-{i}") for i in range(40)]
    for key in keys:
        assert setup.mark_pending(key, "end", 1.0)
    setup.close()
    won: dict[str, list[tuple[str, str, str]]] = {"a": [], "b": []}

    def replica(name: str) -> None:
        repo = PgEventRepository(url)
        for key in keys:
            if repo.claim(key, "end", name, 1e12, 100.0):
                won[name].append(key)
        repo.close()

    threads = [threading.Thread(target=replica, args=(n,)) for n in won]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(won["a"] + won["b"]) == sorted(keys)  # every one claimed, none twice


def test_pg_claims_when_the_claimer_died_then_its_claim_expires_and_is_taken(url: str) -> None:
    repo = PgEventRepository(url)
    key = ("dev", "cam-0", "ev-1")
    try:
        repo.mark_pending(key, "end", 1.0)
        assert repo.claim(key, "end", "a", until=110.0, now=100.0)
        assert not repo.claim(key, "end", "b", until=200.0, now=105.0)  # a still holds it
        assert repo.claim(key, "end", "a", until=120.0, now=106.0)  # its own: renewed
        assert repo.claim(key, "end", "b", until=300.0, now=121.0)  # a's claim expired
        repo.put_explanation(key, "end", {"title": "t"}, 122.0)
        assert not repo.claim(key, "end", "a", until=500.0, now=400.0)  # done: nothing to claim
        assert repo.pending() == []
    finally:
        repo.close()


def test_sqlite_claims_when_one_process_then_always_its_own(tmp_path: Path) -> None:
    repo = SqliteEventRepository(tmp_path)
    try:
        assert repo.claim(("d", "c", "e"), "end", "local", 1.0, 0.0)
    finally:
        repo.close()


def test_pg_alert_outbox_when_two_replicas_write_then_one_sender_sees_all_in_order(
    url: str,
) -> None:
    a, b = PgAlertOutbox(url, 100, 2**20), PgAlertOutbox(url, 100, 2**20)
    try:
        ids = [
            a.put("t/a", b"1", False)[0],
            b.put("t/b", b"2", True)[0],
            a.put("t/a", b"3", False)[0],
        ]
        assert ids == sorted(ids)
        sent = b.pending(0, 10)
        assert [(p.topic, p.payload, p.retain) for p in sent] == [
            ("t/a", b"1", False), ("t/b", b"2", True), ("t/a", b"3", False)
        ]  # fmt: skip
        assert a.ack(ids[0]) and not b.ack(ids[0])
        assert [p.id for p in b.pending(ids[0], 10)] == ids[1:]
        a.set_cursor("ingest.records", 42)
        assert b.cursor("ingest.records") == 42 and b.cursor("other") is None
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_alert_outbox_when_put_with_the_cursor_then_both_commit_or_neither(
    store: str, url: str, tmp_path: Path
) -> None:
    """The alert tail writes an alert and the log position past it in one transaction, so a
    crash between them can neither make the alert twice nor skip it."""
    box: AlertOutbox = (
        Outbox(tmp_path, 100, 2**20) if store == "sqlite" else PgAlertOutbox(url, 100, 2**20)
    )
    try:
        box.put("t", b"1", False, ("ingest.records", 7))
        assert box.cursor("ingest.records") == 7 and len(box.pending(0, 10)) == 1
        with pytest.raises((OverflowError, psycopg.Error)):  # the cursor write fails last
            box.put("t", b"2", False, ("ingest.records", 2**70))
        assert box.cursor("ingest.records") == 7  # neither the cursor nor the alert moved
        assert [p.payload for p in box.pending(0, 10)] == [b"1"] and box.depth == 1
        box.put("t", b"3", False, ("ingest.records", 9))  # and the handle still works
        assert box.cursor("ingest.records") == 9
    finally:
        box.close()


def test_pg_alert_outbox_when_full_then_oldest_evicted_and_counted(url: str) -> None:
    box = PgAlertOutbox(url, 3, 2**20)
    try:
        evicted = [box.put("t", str(i).encode(), False)[1] for i in range(5)]
        assert evicted == [0, 0, 0, 1, 1] and box.depth == 3
        assert [p.payload for p in box.pending(0, 10)] == [b"2", b"3", b"4"]
    finally:
        box.close()


def test_roles_when_two_replicas_then_one_holds_and_the_other_takes_over_on_stop(
    url: str, tmp_path: Path
) -> None:
    async def main() -> None:
        storage = open_storage(url, tmp_path, 86_400.0)
        ma, mb = CloudMetrics(), CloudMetrics()
        a, b = Roles(storage, ROLES, 0.1, ma), Roles(storage, ROLES, 0.1, mb)
        seen: list[tuple[str, bool]] = []

        async def listener(held: bool) -> None:
            seen.append(("mqtt", held))

        b.on_change("mqtt", listener)
        await a.start()
        await b.start()
        assert a.held == set(ROLES) and b.held == set()
        await a.stop()
        for _ in range(50):
            if b.held == set(ROLES):
                break
            await asyncio.sleep(0.05)
        assert b.held == set(ROLES) and seen == [("mqtt", True)]
        assert ma.value("vau_cloud_lease_acquired_total", {"role": "mqtt"}) == 1
        assert mb.value("vau_cloud_lease_acquired_total", {"role": "mqtt"}) == 1
        assert mb.value("vau_cloud_lease_held", {"role": "projector"}) == 1
        await b.stop()

    asyncio.run(main())


def test_roles_when_the_session_breaks_then_the_loss_is_counted_and_told(
    url: str, tmp_path: Path
) -> None:
    async def main() -> None:
        metrics = CloudMetrics()
        roles = Roles(open_storage(url, tmp_path, 86_400.0), ["mqtt"], 60.0, metrics)
        seen: list[bool] = []

        async def listener(held: bool) -> None:
            seen.append(held)

        roles.on_change("mqtt", listener)
        await roles.start()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND objid = %s",
                (lock_key("mqtt") & 0xFFFFFFFF,),
            )
        await roles.round()  # notices the loss; the lock is free again, so it retakes it
        assert seen == [True, False, True]
        assert metrics.value("vau_cloud_lease_lost_total", {"role": "mqtt"}) == 1
        assert metrics.value("vau_cloud_lease_acquired_total", {"role": "mqtt"}) == 2
        await roles.stop()

    asyncio.run(main())
