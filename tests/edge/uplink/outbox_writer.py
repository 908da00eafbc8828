"""A writer process for the outbox crash tests: puts and acks in a loop until it is killed.

Usage: outbox_writer.py DATA_DIR SEED. Prints, flushed: "EPOCH <epoch>" once opened,
"PUT <camera> <seq>" after each put has returned, "ACKING <camera> <seq>" before an ack and
"ACK <camera> <seq>" after it has returned. So every printed PUT is on disk, every printed ACK has
deleted its records for good, and an ACKING without its ACK may have done either.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from vau.edge.uplink.outbox import Outbox
from vau.edge.uplink.records import OutboxItem, Priority

CAMERAS = ("cam-a", "cam-b", "cam-c")


def main() -> None:
    data_dir, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    with Outbox(data_dir, max_bytes=2**30, ttl_s=1e9) as outbox:
        print(f"EPOCH {outbox.epoch}", flush=True)
        while True:
            camera = rng.choice(CAMERAS)
            body = rng.randbytes(rng.randint(1_000, 50_000))
            stored = outbox.put(OutboxItem(camera, "frame", Priority.FRAME, time.time(), body))
            print(f"PUT {camera} {stored.seq}", flush=True)
            if rng.random() < 0.3:
                ack(outbox, rng)


def ack(outbox: Outbox, rng: random.Random) -> None:
    """Ack up to a random record still held, as the cloud would after receiving it."""
    camera = rng.choice(CAMERAS)
    held = outbox.pending(camera, 0, 1_000)
    if held:
        seq = rng.choice(held).seq
        print(f"ACKING {camera} {seq}", flush=True)
        outbox.ack(camera, outbox.epoch, seq)
        print(f"ACK {camera} {seq}", flush=True)


if __name__ == "__main__":
    main()
