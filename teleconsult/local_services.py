"""How to run the parts of a cluster natively on loopback: free ports, and the command lines and
configuration of haproxy, redis-server, PostgreSQL, SeaweedFS (S3) and coturn.

Shared by `make cluster` (scripts/cluster.py) and the tests' throwaway servers (tests/support/),
so that both run the same configuration. Nothing here starts a process; every address is
127.0.0.1.
"""

from __future__ import annotations

import glob
import json
import random
import shutil
import socket
import sys
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_on_both(port: int) -> bool:
    """Nobody holds `port` on 127.0.0.1, for TCP nor for UDP."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_pair() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (TURN listens on both)."""
    while True:
        port = free_port()
        if free_on_both(port):
            return port


def free_udp_block(size: int, low: int = 20000, high: int = 32000) -> tuple[int, int]:
    """`size` consecutive ports, all free now (TCP and UDP), starting in [`low`, `high`)."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(low, high)
        if all(free_on_both(p) for p in range(first, first + size)):
            return first, first + size - 1
    raise RuntimeError(f"no block of {size} free UDP ports")


# --- haproxy -----------------------------------------------------------------------------------

HAPROXY_CONFIG = """\
global
    maxconn 8000

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout client-fin 5s
    retries 3
    option redispatch 1
    option http-server-close

frontend signaling
    bind 127.0.0.1:{port}
    default_backend servers

backend servers
    balance {balance}
    option httpchk GET /healthz
    http-check expect status 200
    timeout check 1s
    default-server inter 250ms fall 2 rise 2
{servers}
"""


def haproxy_binary() -> str:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        raise RuntimeError("haproxy is not installed: run `make system-deps` (it installs it)")
    return binary


def haproxy_config(port: int, backends: Mapping[str, str], balance: str = "roundrobin") -> str:
    """What docs/deployment.md asks of a load balancer, on 127.0.0.1:`port` in front of
    `backends` (name → "127.0.0.1:port")."""
    servers = "\n".join(f"    server {name} {address} check" for name, address in backends.items())
    return HAPROXY_CONFIG.format(port=port, balance=balance, servers=servers)


# --- redis-server ------------------------------------------------------------------------------


def redis_argv(port: int) -> list[str]:
    """redis-server on 127.0.0.1:`port`, without persistence."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server is not installed: run `make system-deps` (it installs it)")
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]


# --- PostgreSQL --------------------------------------------------------------------------------

POSTGRES_USER = "teleconsult"
POSTGRES_PASSWORD = "teleconsult"


def postgres_bin(name: str) -> str:
    """Debian's PostgreSQL binary `name` (initdb, pg_ctl, createdb…), the newest version."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make system-deps` (it installs it)")
    return found[-1]


def postgres_url(port: int) -> str:
    return f"postgresql://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:{port}/{POSTGRES_USER}"


def initdb_argv(data: Path, pwfile: Path) -> list[str]:
    return [
        postgres_bin("initdb"),
        "-D",
        str(data),
        "-U",
        POSTGRES_USER,
        "--auth=md5",
        f"--pwfile={pwfile}",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    ]


def pg_ctl_start_argv(data: Path, port: int, socket_dir: Path, log: Path) -> list[str]:
    """Start the cluster in `data` on 127.0.0.1:`port` and wait until it accepts connections."""
    return [
        postgres_bin("pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-t",
        "60",
        "-l",
        str(log),
        "-o",
        f"-p {port} -c listen_addresses=127.0.0.1 -k {socket_dir} "
        "-c fsync=off -c full_page_writes=off",
        "start",
    ]


def pg_ctl_stop_argv(data: Path) -> list[str]:
    return [postgres_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]


def createdb_argv(port: int) -> list[str]:
    return [
        "env",
        f"PGPASSWORD={POSTGRES_PASSWORD}",
        postgres_bin("createdb"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        POSTGRES_USER,
        POSTGRES_USER,
    ]


# --- SeaweedFS (S3) ----------------------------------------------------------------------------

WEED_PORTS = (
    "master",
    "master.grpc",
    "volume",
    "volume.grpc",
    "filer",
    "filer.grpc",
    "s3",
    "s3.grpc",
    "admin",
    "admin.grpc",
)


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS's `weed` is not installed: `make .venv/.dev` installs it")
    return found


def s3_identities(access_key: str, secret_key: str) -> str:
    """SeaweedFS's `-s3.config`: one identity, so that signatures are really checked."""
    return json.dumps(
        {
            "identities": [
                {
                    "name": "teleconsult",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
    )


def weed_mini_argv(root: Path, data: Path, ports: Mapping[str, int], config: Path) -> list[str]:
    """`weed mini` on 127.0.0.1 with every port in `ports` (keys: WEED_PORTS)."""
    return [
        weed_binary(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master.grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume.grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3.grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-s3.localSocket={root / 's3.sock'}",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={ports['admin']}",
        f"-admin.port.grpc={ports['admin.grpc']}",
    ]


# --- coturn ------------------------------------------------------------------------------------

TURNSERVER = "/usr/bin/turnserver"


def turn_config(
    *,
    port: int,
    relay_min: int,
    relay_max: int,
    secret: str,
    realm: str,
    folder: Path,
    tls_port: int | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> str:
    """coturn with TURN REST auth (`use-auth-secret`: give `secret` to teleconsult as
    TURN_SECRET), on 127.0.0.1 only, loopback peers allowed (the media relay is there too), TLS
    on `tls_port` when a certificate is given; its log, pid and user db in `folder`."""
    tls = (
        [f"tls-listening-port={tls_port}", f"cert={cert}", f"pkey={key}", "no-tlsv1", "no-tlsv1_1"]
        if tls_port is not None and cert is not None and key is not None
        else ["no-tls"]
    )
    return "\n".join(
        [
            "listening-ip=127.0.0.1",
            "relay-ip=127.0.0.1",
            f"listening-port={port}",
            f"min-port={relay_min}",
            f"max-port={relay_max}",
            "use-auth-secret",
            f"static-auth-secret={secret}",
            f"realm={realm}",
            *tls,
            "no-dtls",
            "fingerprint",
            "no-cli",
            "no-multicast-peers",
            "allow-loopback-peers",
            "no-rfc5780",
            "no-software-attribute",
            f"userdb={folder / 'turndb'}",
            f"log-file={folder / 'turn.log'}",
            "simple-log",
            "no-stdout-log",
            "verbose",
            f"pidfile={folder / 'turn.pid'}",
            "",
        ]
    )
