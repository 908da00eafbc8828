"""The cloud side (`vau-cloud`): authenticated, validated, exactly-once-in-effect ingest over gRPC.

settings -> server (grpc.aio: Uplink, health, reflection) -> servicer (statuses) -> ingest (one
stream) -> codec / validate (untrusted bytes -> records) -> writer / store (SQLite dedup, group
commit) -> sessions (per-camera hand-off to later stages). auth and admission guard the door.
"""
