"""A throwaway coturn (Debian's `turnserver`) on loopback, with the TURN REST auth the server mints.

It writes its own config into a temporary directory: `use-auth-secret` with a random
`static-auth-secret` (give the same to the teleconsult server as TURN_SECRET), listening and
relaying on 127.0.0.1 only, TURN over UDP and TCP on `port` and over TLS on `tls_port` with a
self-signed certificate made here for 127.0.0.1 (`spki_sha256` lets Chromium trust exactly it),
relayed addresses in [`relay_min`, `relay_max`], loopback peers allowed (the other browser and
the media relay are on 127.0.0.1 too), no CLI, no multicast peers, a log file in the directory.
Inside a `NetworkNamespace` it runs there (`namespace=`). Stopped by its pid.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from teleconsult.local_services import (
    TURNSERVER,
    free_port_pair,
    free_udp_block,
    turn_config,
)
from tests.support.netns import NetworkNamespace
from tests.support.processes import stop_process
from tests.support.waiting import until

Transport = Literal["udp", "tcp", "tls"]


class TurnServer:
    """`with TurnServer() as turn:` — `turn.urls("tcp")`, `turn.secret`, `turn.log()`."""

    def __init__(self, namespace: NetworkNamespace | None = None, relay_ports: int = 40) -> None:
        self.namespace = namespace
        self.secret = secrets.token_hex(16)
        self.realm = "teleconsult.test"
        self.port = free_port_pair()
        self.tls_port = free_port_pair()
        while self.tls_port == self.port:
            self.tls_port = free_port_pair()
        self.relay_min, self.relay_max = free_udp_block(relay_ports)
        self.dir = Path(tempfile.mkdtemp(prefix="teleconsult-turn-"))
        self.cert = self.dir / "turn-cert.pem"
        self.key = self.dir / "turn-key.pem"
        self.log_path = self.dir / "turn.log"
        self.spki_sha256 = ""
        self.process: subprocess.Popen[bytes] | None = None

    def urls(self, *transports: Transport) -> list[str]:
        """The TURN URLs of these transports, in this order (what TURN_URLS lists)."""
        by_transport = {
            "udp": f"turn:127.0.0.1:{self.port}?transport=udp",
            "tcp": f"turn:127.0.0.1:{self.port}?transport=tcp",
            "tls": f"turns:127.0.0.1:{self.tls_port}?transport=tcp",
        }
        return [by_transport[t] for t in transports]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return self.namespace.argv(argv) if self.namespace else list(argv)

    def _make_certificate(self) -> None:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(self.key), "-out", str(self.cert), "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )  # fmt: skip
        public = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-noout", "-pubkey"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        der = subprocess.run(
            ["openssl", "pkey", "-pubin", "-outform", "der"],
            input=public, check=True, capture_output=True,
        ).stdout  # fmt: skip
        self.spki_sha256 = base64.b64encode(hashlib.sha256(der).digest()).decode()

    def config(self) -> str:
        return turn_config(
            port=self.port,
            relay_min=self.relay_min,
            relay_max=self.relay_max,
            secret=self.secret,
            realm=self.realm,
            folder=self.dir,
            tls_port=self.tls_port,
            cert=self.cert,
            key=self.key,
        )

    def _listening(self) -> bool:
        tcp = subprocess.run(
            self._argv(["ss", "-Hltn", f"( sport = :{self.port} or sport = :{self.tls_port} )"]),
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        udp = subprocess.run(
            self._argv(["ss", "-Hlun", f"( sport = :{self.port} )"]),
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        return f":{self.port} " in tcp and f":{self.tls_port} " in tcp and f":{self.port} " in udp

    def start(self) -> TurnServer:
        if not Path(TURNSERVER).exists():
            raise RuntimeError("coturn is not installed: run `make test` (it installs it)")
        self._make_certificate()
        conf = self.dir / "turnserver.conf"
        conf.write_text(self.config())
        self.process = subprocess.Popen(
            self._argv([TURNSERVER, "-c", str(conf)]),
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "turn.stderr").open("wb"),
        )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"turnserver exited early:\n{self.log()}")
            return self._listening()

        try:
            until(up, within=15, what="turnserver listening")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TurnServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
