"""`make cluster`: a whole teleconsult cluster, natively on loopback, until Ctrl-C.

haproxy in front of two signaling processes (`teleconsult serve`, MEDIA_NODES=redis), two media
nodes (`teleconsult media-node`, each its own UDP range and /metrics port), redis-server,
PostgreSQL (initdb in the run's folder; as root, run as the `postgres` user), SeaweedFS's S3 with
a `recordings` bucket, and coturn with a shared secret. It seeds the demo data into the cluster's
database and prints

    CLUSTER_URL=<the load balancer>
    EXAM_ROOM_URL=… / SPECIALIST_URL=…   (the demo consult's join links, through it)
    CLUSTER_PIDS=<file>                   (lines `<role> <name> <pid>`)

Roles: signaling, media, redis, postgres, s3, turn, lb. SIGINT (Ctrl-C) or SIGTERM stops every
process by its pid and removes the run's folder. docs/deployment.md, "A local cluster".
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio

from teleconsult.local_services import (
    TURNSERVER,
    WEED_PORTS,
    createdb_argv,
    free_port,
    free_port_pair,
    free_udp_block,
    haproxy_binary,
    haproxy_config,
    initdb_argv,
    pg_ctl_start_argv,
    pg_ctl_stop_argv,
    postgres_url,
    redis_argv,
    s3_identities,
    turn_config,
    weed_mini_argv,
)

REPO = Path(__file__).resolve().parents[1]
BUCKET = "recordings"
MEDIA_PORTS_PER_NODE = 100


class Stopped(Exception):
    """SIGINT or SIGTERM arrived while the cluster was starting."""


@dataclass
class Part:
    role: str
    name: str
    pid: int
    stop: Callable[[], None]


@dataclass
class Cluster:
    root: Path
    parts: list[Part] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def pids_file(self) -> Path:
        return self.root / "pids"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def add(self, role: str, name: str, process: subprocess.Popen[bytes]) -> None:
        self.parts.append(Part(role, name, process.pid, lambda: _terminate(process)))

    def spawn(
        self,
        role: str,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a session of its own (a Ctrl-C in the terminal reaches only this
        script, which stops the parts in order), its output in logs/<name>.log."""
        process = subprocess.Popen(
            argv,
            stdout=self.log(name).open("ab"),
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd or self.root,
            start_new_session=True,
        )
        self.add(role, name, process)
        return process

    def wait_for(
        self,
        what: str,
        ready: Callable[[], bool],
        process: subprocess.Popen[bytes] | None,
        within: float = 60.0,
    ) -> None:
        deadline = time.monotonic() + within
        while not ready():
            if self.stopping.is_set():
                raise Stopped
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{what} exited early (exit {process.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready within {within:.0f} s")
            time.sleep(0.1)

    def write_pids(self) -> None:
        lines = [f"{p.role} {p.name} {p.pid}\n" for p in self.parts]
        self.pids_file.write_text("".join(lines))

    def stop_all(self) -> None:
        """Every part, the last started first (the load balancer before the signaling
        processes, the databases last)."""
        for part in reversed(self.parts):
            began = time.monotonic()
            try:
                part.stop()
                print(f"  stopped {part.name} in {time.monotonic() - began:.1f} s", flush=True)
            except Exception as exc:  # keep stopping the others
                print(f"stopping {part.name} (pid {part.pid}): {exc}", file=sys.stderr)
        self.parts.clear()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_redis(cluster: Cluster) -> str:
    port = free_port()
    process = cluster.spawn("redis", "redis", redis_argv(port))
    cluster.wait_for("redis-server", lambda: _accepts(port), process, within=15)
    return f"redis://127.0.0.1:{port}/0"


def start_postgres(cluster: Cluster) -> str:
    """initdb + pg_ctl in <root>/postgres; as root they run as the `postgres` user (PostgreSQL
    refuses to run as root). Its role's pid is the postmaster's."""
    port = free_port()
    folder = cluster.root / "postgres"
    folder.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres", "postgres")
    pwfile = folder / "pw"
    pwfile.write_text("teleconsult\n")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")
    data = folder / "data"

    def run(argv: list[str]) -> None:
        done = subprocess.run(
            [*as_user, *argv], capture_output=True, timeout=120, check=False, start_new_session=True
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(
                f"{' '.join(argv[:1])} failed (as root, every folder above "
                f"{folder} must be searchable by `postgres`):\n{output}"
            )

    run(initdb_argv(data, pwfile))
    run(pg_ctl_start_argv(data, port, folder, folder / "log"))
    pid = int((data / "postmaster.pid").read_text().split()[0])
    cluster.parts.append(Part("postgres", "postgres", pid, lambda: run(pg_ctl_stop_argv(data))))
    run(createdb_argv(port))
    return postgres_url(port)


def start_s3(cluster: Cluster, access_key: str, secret_key: str) -> str:
    """SeaweedFS (`weed mini`) with one identity and the recordings bucket."""
    folder = cluster.root / "s3"
    (folder / "data").mkdir(parents=True)
    ports = {name: free_port() for name in WEED_PORTS}
    config = folder / "s3.json"
    config.write_text(s3_identities(access_key, secret_key))
    process = cluster.spawn(
        "s3", "seaweedfs", weed_mini_argv(folder, folder / "data", ports, config), cwd=folder
    )
    client = Minio(
        f"127.0.0.1:{ports['s3']}",
        access_key=access_key,
        secret_key=secret_key,
        secure=False,
        region="us-east-1",
    )

    def bucket_made() -> bool:
        try:
            if not client.bucket_exists(BUCKET):
                client.make_bucket(BUCKET)
            return True
        except Exception:
            return False

    cluster.wait_for("SeaweedFS's S3", bucket_made, process, within=90)
    return f"http://127.0.0.1:{ports['s3']}"


def start_turn(cluster: Cluster, secret: str) -> str:
    """coturn (UDP and TCP on one port, no TLS) with TURN REST auth on `secret`."""
    if not Path(TURNSERVER).exists():
        raise RuntimeError("coturn is not installed: run `make system-deps` (it installs it)")
    folder = cluster.root / "turn"
    folder.mkdir()
    port = free_port_pair()
    relay_min, relay_max = free_udp_block(100)
    conf = folder / "turnserver.conf"
    conf.write_text(
        turn_config(
            port=port,
            relay_min=relay_min,
            relay_max=relay_max,
            secret=secret,
            realm="teleconsult.local",
            folder=folder,
        )
    )
    process = cluster.spawn("turn", "coturn", [TURNSERVER, "-c", str(conf)])
    cluster.wait_for("turnserver", lambda: _accepts(port), process, within=15)
    return f"turn:127.0.0.1:{port}?transport=udp,turn:127.0.0.1:{port}?transport=tcp"


def teleconsult(*args: str) -> list[str]:
    return [sys.executable, "-m", "teleconsult", *args]


def start_media_node(cluster: Cluster, name: str, env: Mapping[str, str]) -> None:
    low, high = free_udp_block(MEDIA_PORTS_PER_NODE, 40000, 59000)
    metrics = free_port()
    node_env = {
        **env,
        "MEDIA_NODE_ID": name,
        "MEDIA_PORT_MIN": str(low),
        "MEDIA_PORT_MAX": str(high),
        "METRICS_PORT": str(metrics),
    }
    process = cluster.spawn("media", name, teleconsult("media-node"), node_env, cwd=REPO)
    log = cluster.log(name)
    cluster.wait_for(
        f"media node {name}",
        lambda: f"media node {name} ready" in log.read_text(),
        process,
        within=60,
    )
    print(f"  {name}: UDP {low}-{high}, /metrics on http://127.0.0.1:{metrics}/metrics", flush=True)


def start_signaling(cluster: Cluster, name: str, env: Mapping[str, str]) -> str:
    port = free_port()
    process = cluster.spawn(
        "signaling", name, teleconsult("serve"), {**env, "PORT": str(port)}, cwd=REPO
    )
    cluster.wait_for(
        f"signaling {name}",
        lambda: _answers(f"http://127.0.0.1:{port}/healthz"),
        process,
        within=90,
    )
    print(f"  {name}: http://127.0.0.1:{port}", flush=True)
    return f"127.0.0.1:{port}"


def start_lb(cluster: Cluster, port: int, backends: Mapping[str, str]) -> str:
    config = cluster.root / "haproxy.cfg"
    config.write_text(haproxy_config(port, backends))
    binary = haproxy_binary()
    subprocess.run([binary, "-c", "-f", str(config)], check=True, capture_output=True)
    process = cluster.spawn("lb", "haproxy", [binary, "-db", "-f", str(config)])
    url = f"http://127.0.0.1:{port}"
    cluster.wait_for("haproxy", lambda: _answers(url + "/healthz"), process, within=15)
    return url


def seed_demo(env: Mapping[str, str]) -> dict[str, str]:
    """`teleconsult demo` on the cluster's database (it migrates first); its link lines."""
    done = subprocess.run(
        teleconsult("demo"),
        env=dict(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"teleconsult demo failed:\n{done.stdout}{done.stderr}")
    wanted = ("EXAM_ROOM_URL=", "SPECIALIST_URL=")
    lines = [line for line in done.stdout.splitlines() if line.startswith(wanted)]
    return dict(line.split("=", 1) for line in lines)


def run(cluster: Cluster, lb_port: int) -> None:
    jwt_secret = secrets.token_urlsafe(32)
    turn_secret = secrets.token_hex(16)
    s3_access, s3_secret = "teleconsult", secrets.token_urlsafe(24)
    print(f"starting a local cluster in {cluster.root}", flush=True)
    redis_url = start_redis(cluster)
    database_url = start_postgres(cluster)
    s3_endpoint = start_s3(cluster, s3_access, s3_secret)
    turn_urls = start_turn(cluster, turn_secret)
    lb_url = f"http://127.0.0.1:{lb_port}"
    data_dir = cluster.root / "data"
    data_dir.mkdir()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_NODES": "redis",
        "JWT_SECRET": jwt_secret,
        "PUBLIC_URL": lb_url,
        "MEDIA_ADDRESS": "127.0.0.1",
        "TURN_URLS": turn_urls,
        "TURN_SECRET": turn_secret,
        "RECORDINGS_S3_ENDPOINT": s3_endpoint,
        "RECORDINGS_S3_BUCKET": BUCKET,
        "RECORDINGS_S3_ACCESS_KEY": s3_access,
        "RECORDINGS_S3_SECRET_KEY": s3_secret,
    }
    links = seed_demo(env)
    for name in ("media-1", "media-2"):
        start_media_node(cluster, name, env)
    backends = {
        name: start_signaling(cluster, name, env) for name in ("signaling-1", "signaling-2")
    }
    start_lb(cluster, lb_port, backends)
    cluster.write_pids()
    print(
        f"redis {redis_url}, postgres {database_url}, S3 {s3_endpoint}/{BUCKET}, TURN {turn_urls}"
    )
    print(f"CLUSTER_URL={lb_url}")
    for key in ("EXAM_ROOM_URL", "SPECIALIST_URL"):
        print(f"{key}={links[key]}")
    print(f"CLUSTER_PIDS={cluster.pids_file}")
    print("Ctrl-C stops the cluster.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("CLUSTER_PORT", "8080")),
        help="the load balancer's port on 127.0.0.1 (0: a free one; default CLUSTER_PORT or 8080)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the run's folder is made (default: the system's temp dir)",
    )
    args = parser.parse_args(argv)
    lb_port = args.port or free_port()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="teleconsult-cluster-", dir=args.dir))
    root.chmod(0o711)  # the `postgres` user reaches its folder inside
    (root / "logs").mkdir()
    cluster = Cluster(root)

    def on_signal(_signum: int, _frame: object) -> None:
        cluster.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        run(cluster, lb_port)
        while not cluster.stopping.wait(0.5):
            pass
        print("stopping the cluster", flush=True)
    except Stopped:
        print("stopping the cluster (interrupted while starting)", flush=True)
    except Exception as exc:
        print(f"the cluster did not start: {exc}\nlogs in {root / 'logs'}", file=sys.stderr)
        code = 1
    finally:
        cluster.stop_all()
        if code == 0:
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
