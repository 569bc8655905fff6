"""A throwaway redis-server on a free loopback port, with no persistence."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

from teleconsult.local_services import free_port, redis_argv


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def start(self) -> None:
        """Start redis-server on this port (again, after `stop`) and wait until it answers."""
        self.process = subprocess.Popen(
            redis_argv(self.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """SIGTERM to this redis-server (it exits; clients see their connections closed, new
        ones refused) and wait until it is gone."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a hung one must run to exit
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def hang(self) -> None:
        """SIGSTOP: connections stay open and new ones are accepted by the kernel, but nothing
        answers until `resume`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def __exit__(self, *_exc: object) -> None:
        self.stop()
