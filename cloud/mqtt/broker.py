"""Mosquitto 2 configuration for a vau site, as pure functions, and a command that writes it:

    python -m vau.cloud.mqtt.broker --out /etc/mosquitto/conf.d [--base B] [--cloud-user U]

writes `vau.conf` (include it from mosquitto.conf, or copy its lines) and `vau.acl`. The password
file is the operator's (`mosquitto_passwd -c FILE vau-cloud`, then one user per device id).

Why `use_username_as_clientid true`: the ACL confines what each user may read and write, but
MQTT sessions are keyed by client id, and Mosquitto lets any authenticated user claim any client
id. Without the binding a device's user connecting as `vau-cloud` takes over the cloud's persistent
session (the cloud is disconnected, the thief inherits its session). With it the broker replaces
every client id by the user name, so a session belongs to exactly one identity. The cost: one
connection per user name at a time; every consumer (each dashboard, each `vau-alerts tail`) needs
its own user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vau.cloud.mqtt.topics import broker_acl

CONF_NAME, ACL_NAME = "vau.conf", "vau.acl"


def broker_conf(acl_file: Path | str, password_file: Path | str) -> str:
    """The security lines of mosquitto.conf: logins required, the vau ACL, client ids bound to
    user names (applies to every listener unless `per_listener_settings true`)."""
    return (
        "# vau: every client logs in, and its client id is its user name, so no identity can\n"
        "# take over another's persistent session (e.g. a device's user connecting as vau-cloud)\n"
        "allow_anonymous false\n"
        f"password_file {password_file}\n"
        f"acl_file {acl_file}\n"
        "use_username_as_clientid true\n"
    )


def write_broker_files(
    out: Path, base: str, cloud_user: str, discovery_prefix: str, password_file: Path
) -> tuple[Path, Path]:
    """Write `vau.conf` and `vau.acl` into `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    acl = out / ACL_NAME
    acl.write_text(broker_acl(base, cloud_user, discovery_prefix))
    conf = out / CONF_NAME
    conf.write_text(broker_conf(acl.resolve(), password_file))
    return conf, acl


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="folder for vau.conf and vau.acl")
    p.add_argument("--base", default="vau", help="the cloud's mqtt.base_topic")
    p.add_argument("--cloud-user", default="vau-cloud", help="the cloud's mqtt.username")
    p.add_argument("--discovery-prefix", default="homeassistant", help="mqtt.discovery_prefix")
    p.add_argument(
        "--password-file",
        type=Path,
        default=Path("/etc/mosquitto/passwd"),
        help="the mosquitto_passwd file the broker reads",
    )


def cmd_broker_files(args: argparse.Namespace) -> int:
    """`vau-cloud mqtt-config`: write the broker files; one line and exit 2 when it cannot."""
    try:
        conf, acl = write_broker_files(
            args.out, args.base, args.cloud_user, args.discovery_prefix, args.password_file
        )
    except OSError as exc:
        print(
            f"cannot write the broker files into {args.out}: {exc}; pick a writable --out",
            file=sys.stderr,
        )
        return 2
    print(f"wrote {conf} and {acl}; include {conf} from mosquitto.conf and restart the broker")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vau.cloud.mqtt.broker", description=__doc__)
    add_arguments(p)
    return cmd_broker_files(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
