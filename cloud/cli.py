"""`vau-cloud`: serve the ingest, read its stats, make development certificates and device tokens.

User errors (bad settings, plaintext on a public address, missing files) print one line naming
the fix and exit 2, without a traceback. SIGTERM / SIGINT stop `serve` gracefully (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vau.cloud.settings import CloudSettings, SettingsError, cloud_environment_keys, load_settings
from vau.common.cli import run_command

if TYPE_CHECKING:
    from vau.cloud.storage.factory import Storage

log = logging.getLogger("vau.cloud")

FLAG_KEYS = {  # flag dest -> settings key; a flag left unset does not override lower layers
    "listen": "listen",
    "data_dir": "data_dir",
    "metrics_port": "metrics_port",
    "metrics_host": "metrics_host",
    "tokens_file": "tokens_file",
    "http_port": "http_port",
}


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    values = vars(args)
    found = {key: values[dest] for dest, key in FLAG_KEYS.items() if values.get(dest) is not None}
    if values.get("store") is not None:
        found["store"] = {"url": values["store"]}
    return found


def cmd_serve(args: argparse.Namespace) -> int:
    from vau.cloud.server import open_server_storage
    from vau.cloud.storage.sqlite_ingest import check_data_dir

    settings = load_settings(args.config, overrides_from(args))
    # before anything is logged: an error is the one line
    check_data_dir(settings.data_dir)
    storage = open_server_storage(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if cloud_environment_keys():
        log.info("settings from environment: %s", ", ".join(cloud_environment_keys()))
    return asyncio.run(_serve(settings, storage))


async def _serve(settings: CloudSettings, storage: Storage) -> int:
    from vau.cloud.server import create_server
    from vau.common.net import host_port

    server, port = create_server(settings, storage)
    try:
        await server.start()
    except BaseException:  # e.g. the metrics port taken: stop what did start, on this loop
        await server.shutdown(grace=0)
        raise
    host, _ = host_port(settings.listen)
    shown = f"[{host}]" if ":" in host else host
    log.info("listening on %s:%d (auth: %s, data: %s)", shown, port, server.auth_mode,
             server.store.description)  # fmt: skip
    if server.metrics_port is not None:
        mhost = settings.metrics_bind_host
        mshown = f"[{mhost}]" if ":" in mhost else mhost
        log.info("metrics on %s:%d/metrics", mshown, server.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: health NOT_SERVING, draining streams (grace %.1f s)",
             settings.shutdown.grace_s)  # fmt: skip
    await server.shutdown()
    log.info("stopped")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from vau.cloud.storage.factory import store_stats

    stats = store_stats(args.store, args.data_dir)
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return 0
    print(f"{'device':<24} {'camera':<16} {'accepted':>10} {'duplicates':>10} {'gaps':>8} max_seq")
    for device, cams in sorted(stats["devices"].items()):
        for camera, c in sorted(cams.items()):
            print(f"{device:<24} {camera:<16} {c['accepted']:>10} {c['duplicates']:>10} "
                  f"{c['gaps']:>8} {c['max_seq']}")  # fmt: skip
    return 0


def cmd_certs_init(args: argparse.Namespace) -> int:
    from vau.cloud.certs import init_dir

    made = init_dir(args.out, args.device or [], args.server_name or [])
    for name, pair in made.items():
        print(f"{name}: {pair.cert} {pair.key}")
    return 0


def cmd_certs_device(args: argparse.Namespace) -> int:
    from vau.cloud.certs import device_files

    pair = device_files(args.ca_dir, args.device, args.out)
    print(f"{args.device}: {pair.cert} {pair.key}")
    return 0


def cmd_tokens_add(args: argparse.Namespace) -> int:
    from vau.cloud.auth import add_token

    token = add_token(args.tokens_file, args.device)
    print(token)
    print(f"stored sha256 of the token for {args.device} in {args.tokens_file}; the token is "
          "shown only now (give it to the device as uplink.token)", file=sys.stderr)  # fmt: skip
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    from vau.cloud.auth import revoke_token

    revoke_token(args.tokens_file, args.device)
    note = "running servers end its open streams within tokens_recheck_s"
    print(f"revoked the token of {args.device} in {args.tokens_file}; {note}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vau-cloud", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the gRPC ingest (uplink, health, reflection)")
    p.add_argument("--config", type=Path, help="TOML settings file")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (port 0 = any)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="folder of ingest.sqlite3")
    p.add_argument(
        "--store", metavar="URL", help="the store: a folder, sqlite:///ABS/PATH or postgresql://..."
    )
    p.add_argument("--metrics-port", type=int, metavar="P", help="Prometheus port")
    p.add_argument(
        "--metrics-host", metavar="HOST", help="metrics address (default: the --listen host)"
    )
    p.add_argument("--tokens-file", type=Path, metavar="F", help="device token hashes (JSON)")
    p.add_argument("--http-port", type=int, metavar="P", help="review page port (0 = any)")
    p.set_defaults(handler=cmd_serve)
    p = sub.add_parser("stats", help="per-device, per-camera ingest counts")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, metavar="DIR", help="the server's --data-dir")
    where.add_argument("--store", metavar="URL", help="the server's --store")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_stats)
    _add_certs(sub)
    _add_tokens(sub)
    from vau.cloud import bench_load

    bench_load.add_parser(sub)
    from vau.cloud.explain import eval_cli, projector_cli

    eval_cli.add_parsers(sub)
    projector_cli.add_parser(sub)
    from vau.cloud.mqtt import broker

    p = sub.add_parser(
        "mqtt-config",
        help="write Mosquitto's vau.conf and vau.acl (each device confined; client ids bound to "
        "user names)",
    )
    broker.add_arguments(p)
    p.set_defaults(handler=broker.cmd_broker_files)
    return parser


def _add_certs(sub: Any) -> None:
    certs = sub.add_parser("certs", help="development CA and certificates (mTLS)")
    csub = certs.add_subparsers(dest="certs_command", required=True)
    p = csub.add_parser("init", help="new CA, server certificate and device certificates")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--device", action="append", metavar="ID", help="a device id (repeatable)")
    p.add_argument("--server-name", action="append", metavar="NAME", help="extra server SAN")
    p.set_defaults(handler=cmd_certs_init)
    p = csub.add_parser("device", help="one more device certificate from an existing CA")
    p.add_argument("--ca-dir", type=Path, required=True, metavar="DIR")
    p.add_argument("--device", required=True, metavar="ID")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=cmd_certs_device)


def _add_tokens(sub: Any) -> None:
    tokens = sub.add_parser("tokens", help="per-device bearer tokens (sites without PKI)")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True)
    p = tsub.add_parser("add", help="make a token for DEVICE; prints it once, stores its hash")
    p.add_argument("device", metavar="DEVICE")
    p.add_argument("--tokens-file", type=Path, required=True, metavar="F")
    p.set_defaults(handler=cmd_tokens_add)
    p = tsub.add_parser("revoke", help="remove DEVICE's token; its open streams end too")
    p.add_argument("device", metavar="DEVICE")
    p.add_argument("--tokens-file", type=Path, required=True, metavar="F")
    p.set_defaults(handler=cmd_tokens_revoke)


def user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean the user must change something: one line, exit 2, no traceback."""
    from vau.cloud.auth import TokenFileError
    from vau.cloud.certs import CertError
    from vau.cloud.server import ServerConfigError
    from vau.cloud.storage.ingest_log import StoreError
    from vau.common.net import PortError

    return SettingsError, ServerConfigError, StoreError, CertError, TokenFileError, PortError


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv, user_errors)


if __name__ == "__main__":
    sys.exit(main())
