"""The anchor: the same publishers and subscribers through a Janus VideoRoom, started here.

Debian's `janus` (1.1.2: `apt-get install -y janus`) runs as a child of the relay process
with a configuration generated in a temporary directory: only the VideoRoom plugin and the
HTTP transport (on a free 127.0.0.1 port), no STUN/TURN, no event handlers, mDNS candidates
ignored, ICE gathering enforced to 127.0.0.1. One VideoRoom per consult (VP8 + RTX, Opus, no
bit-rate cap, no periodic keyframe requests, no recording), one publisher handle per
publisher, one subscriber handle per subscriber, talking JSEP over Janus's HTTP API with a
long poll for events, as a browser application would.

Janus never gathers on a loopback interface (src/ice.c skips every interface flagged
IFF_LOOPBACK before it looks at `ice_enforce_list`). To keep every packet on 127.0.0.1, the
benchmark compiles a ten-line `getifaddrs()` wrapper (`cc`, preloaded into Janus only) that
clears that flag, so that `ice_enforce_list = "127.0.0.1"` selects the loopback address and
nothing else. It changes which addresses Janus gathers on, not how Janus forwards media.

CPU is Janus's whole process (every thread, user + system) read from its process CPU clock
(`clock_gettime` on the clock id of its pid, the clock `time.process_time()` reads for the
relay process itself), against the relay process's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.relay_parts.channel import Channel

JANUS_LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
INSTALL_HINT = "apt-get install -y janus (Debian/Ubuntu: Janus 1.1.2); a C compiler (cc)"

LOOPBACK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
/* Janus skips interfaces flagged IFF_LOOPBACK; clear the flag so that its
   ice_enforce_list can choose 127.0.0.1. Nothing else changes. */
int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **);
    if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real(ifap);
    if (rc == 0)
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next) i->ifa_flags &= ~IFF_LOOPBACK;
    return rc;
}
"""


class JanusMissing(RuntimeError):
    """Janus (or what the benchmark needs to run it on loopback) is not installed."""


def janus_available() -> str | None:
    """None when Janus can run here; else why not, with how to install it."""
    janus = shutil.which("janus")
    if janus is None:
        return f"janus is not installed ({INSTALL_HINT})"
    for folder, name in (("plugins", "libjanus_videoroom.so"), ("transports", "libjanus_http.so")):
        if not (JANUS_LIBRARIES / folder / name).exists():
            return f"{JANUS_LIBRARIES / folder / name} is missing ({INSTALL_HINT})"
    if shutil.which("cc") is None:
        return f"no C compiler for the loopback wrapper ({INSTALL_HINT})"
    return None


def janus_version() -> str | None:
    janus = shutil.which("janus")
    if janus is None:
        return None
    with contextlib.suppress(Exception):
        out = subprocess.run([janus, "--version"], capture_output=True, text=True, timeout=10)
        for line in out.stdout.splitlines():
            if line.startswith("Janus version:"):
                return line.split("(", 1)[-1].rstrip(")").strip()
    return None


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process `pid`, from its CPU clock."""
    # Linux: the CPU-time clock of a process is ((~pid) << 3) | CPUCLOCK_SCHED (2).
    return time.clock_gettime(((~pid) << 3) | 2)


def _die_with_parent() -> None:
    """In Janus, before exec: SIGKILL when the relay process (its parent) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class JanusServer:
    """One Janus process with a generated configuration, on loopback."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="teleconsult-bench-janus-"))
        self.port = free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.root / "janus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/janus"

    def _configure(self) -> Path:
        root = self.root
        conf = root / "conf"
        for folder in ("conf", "plugins", "transports", "events", "loggers"):
            (root / folder).mkdir()
        (root / "plugins" / "libjanus_videoroom.so").symlink_to(
            JANUS_LIBRARIES / "plugins" / "libjanus_videoroom.so"
        )
        (root / "transports" / "libjanus_http.so").symlink_to(
            JANUS_LIBRARIES / "transports" / "libjanus_http.so"
        )
        (conf / "janus.jcfg").write_text(
            "general: {\n"
            f'\tconfigs_folder = "{conf}"\n'
            f'\tplugins_folder = "{root / "plugins"}"\n'
            f'\ttransports_folder = "{root / "transports"}"\n'
            f'\tevents_folder = "{root / "events"}"\n'
            f'\tloggers_folder = "{root / "loggers"}"\n'
            "\tdebug_level = 3\n"
            '\tinterface = "127.0.0.1"\n'
            "\tsession_timeout = 0\n"
            "\tprotected_folders = []\n"
            "}\n"
            "media: {\n}\n"
            "nat: {\n"
            "\tnice_debug = false\n"
            "\tignore_mdns = true\n"
            '\tice_enforce_list = "127.0.0.1"\n'
            "}\n"
        )
        (conf / "janus.transport.http.jcfg").write_text(
            "general: {\n"
            '\tjson = "plain"\n\tbase_path = "/janus"\n\thttp = true\n'
            f'\tport = {self.port}\n\tip = "127.0.0.1"\n\thttps = false\n'
            "}\nadmin: {\n\tadmin_http = false\n}\n"
        )
        (conf / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
        shim_c = root / "loopback.c"
        shim_c.write_text(LOOPBACK_SHIM)
        shim = root / "loopback.so"
        subprocess.run(
            ["cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(shim_c), "-ldl"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return shim

    def _spawn(self) -> subprocess.Popen[bytes]:
        shim = self._configure()
        janus = shutil.which("janus")
        assert janus is not None
        conf = self.root / "conf"
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                [janus, "-C", str(conf / "janus.jcfg"), "-F", str(conf), "-o"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,  # only prctl() before exec
            )

    async def start(self, limit_s: float = 20) -> None:
        why = janus_available()
        if why is not None:
            raise JanusMissing(why)
        self.process = self._spawn()
        deadline = time.monotonic() + limit_s
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"janus exited at start:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.url}/info") as reply:
                        if reply.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"janus did not answer in {limit_s:.0f}s:\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def problems(self) -> list[str]:
        """Janus's warning and error lines."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return [line for line in text.splitlines() if "[WARN]" in line or "[ERR]" in line]
        return []

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


class JanusApi:
    """Janus's HTTP API for one session: requests, and events from a long poll."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = aiohttp.ClientSession()
        self.session: int | None = None
        self._ids = itertools.count(1)
        self._events: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self.other_events: dict[str, int] = {}

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url + path, json=body) as reply:
            data: dict[str, Any] = await reply.json(content_type=None)
        if data.get("janus") == "error":
            raise RuntimeError(f"janus: {data.get('error')}")
        return data

    async def open(self) -> None:
        data = await self._post("", {"janus": "create", "transaction": self._transaction()})
        self.session = int(data["data"]["id"])
        self._poller = asyncio.create_task(self._poll())

    def _transaction(self) -> str:
        return f"t{next(self._ids)}"

    async def attach(self) -> int:
        data = await self._post(
            f"/{self.session}",
            {
                "janus": "attach",
                "plugin": "janus.plugin.videoroom",
                "transaction": self._transaction(),
            },
        )
        return int(data["data"]["id"])

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (answered in the HTTP reply)."""
        data = await self._post(
            f"/{self.session}/{handle}",
            {"janus": "message", "body": body, "transaction": self._transaction()},
        )
        plugin: dict[str, Any] = data.get("plugindata", {}).get("data", {})
        if "error" in plugin:
            raise RuntimeError(f"janus videoroom: {plugin['error']}")
        return plugin

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None, limit_s=30.0
    ) -> dict[str, Any]:
        """An asynchronous plugin request: its event (plugin data and JSEP) from the long poll."""
        transaction = self._transaction()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._events[transaction] = future
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            await self._post(f"/{self.session}/{handle}", message)
            event = await asyncio.wait_for(future, limit_s)
        finally:
            self._events.pop(transaction, None)
        data = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise RuntimeError(f"janus videoroom: {data['error']}")
        return event

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(
                    f"{self.url}/{self.session}", params={"maxev": "10"}
                ) as reply:
                    data = await reply.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)
                continue
            for event in data if isinstance(data, list) else [data]:
                future = self._events.get(str(event.get("transaction")))
                if future is not None and event.get("janus") == "event" and not future.done():
                    future.set_result(event)
                else:
                    kind = str(event.get("janus"))
                    self.other_events[kind] = self.other_events.get(kind, 0) + 1

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(BaseException):
                await self._poller
        with contextlib.suppress(Exception):
            await self._post(f"/{self.session}", {"janus": "destroy", "transaction": "end"})
        await self.http.close()


class JanusRelays:
    """The relay role of a Janus run: one VideoRoom per consult, Janus doing the forwarding."""

    def __init__(self, channel: Channel, options: dict[str, Any]) -> None:
        self.channel = channel
        self.server = JanusServer()
        self.api: JanusApi | None = None
        self.rooms: dict[str, int] = {}
        self.feeds: dict[str, int] = {}
        self.subscriber_handles: dict[str, int] = {}
        self.offers = 0
        self._room_ids = itertools.count(1000)
        self._room_lock = asyncio.Lock()

    async def measured_process(self) -> dict[str, Any]:
        """Start Janus (once); the process whose CPU the benchmark measures."""
        if self.api is None:
            await self.server.start()
            self.api = JanusApi(self.server.url)
            await self.api.open()
        assert self.server.process is not None
        return {"pid": self.server.process.pid, "name": "janus", "version": janus_version()}

    async def cpu_clock(self) -> dict[str, float]:
        assert self.server.process is not None
        return {
            "process_s": process_cpu_s(self.server.process.pid),
            "monotonic": time.monotonic(),
        }

    async def _room(self, consult: str) -> int:
        assert self.api is not None
        async with self._room_lock:
            room = self.rooms.get(consult)
            if room is None:
                room = next(self._room_ids)
                handle = await self.api.attach()
                await self.api.request(
                    handle,
                    {
                        "request": "create",
                        "room": room,
                        "publishers": 16,
                        "videocodec": "vp8",
                        "audiocodec": "opus",
                        "bitrate": 0,
                        "fir_freq": 0,
                        "record": False,
                        "notify_joining": False,
                    },
                )
                self.rooms[consult] = room
            return room

    async def publish(self, consult: str, participant: str, sdp: str) -> str:
        api = self.api
        assert api is not None
        room = await self._room(consult)
        handle = await api.attach()
        joined = await api.message(
            handle, {"request": "join", "ptype": "publisher", "room": room, "display": participant}
        )
        self.feeds[participant] = int(joined["plugindata"]["data"]["id"])
        event = await api.message(
            handle,
            {"request": "publish"},
            jsep={"type": "offer", "sdp": sdp, "trickle": False},
        )
        answer: str = event["jsep"]["sdp"]
        return answer

    async def subscribe(self, consult: str, participant: str, source: str) -> None:
        api = self.api
        assert api is not None
        room = await self._room(consult)
        handle = await api.attach()
        self.subscriber_handles[participant] = handle
        body = {
            "request": "join",
            "ptype": "subscriber",
            "room": room,
            "streams": [{"feed": self.feeds[source]}],
        }
        # A feed can be subscribed to once its publisher's connection is up (Janus answers
        # "No such feed" until then): ask again until it is.
        deadline = time.monotonic() + 30
        while True:
            try:
                event = await api.message(handle, body)
                break
            except RuntimeError as exc:
                if "No such feed" not in str(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        self.offers += 1
        self.channel.event(
            "offer", {"consult": consult, "participant": participant, "sdp": event["jsep"]["sdp"]}
        )

    async def subscriber_answer(self, consult: str, participant: str, sdp: str) -> None:
        api = self.api
        assert api is not None
        await api.message(
            self.subscriber_handles[participant],
            {"request": "start"},
            jsep={"type": "answer", "sdp": sdp, "trickle": False},
        )

    async def stats(self) -> dict[str, Any]:
        """Janus keeps its counters to its Admin API (off here): none."""
        other = {} if self.api is None else dict(self.api.other_events)
        info = {
            "consults": len(self.rooms),
            "publishers": len(self.feeds),
            "subscribe_offers": self.offers,
            "janus_events": other,
        }
        return {"counters": {}, "info": info}

    def log_problems(self) -> list[str]:
        return self.server.problems()

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()
        self.server.stop()
