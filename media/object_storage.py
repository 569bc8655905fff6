"""Finished recordings in an S3-compatible bucket (MinIO, SeaweedFS, Ceph RGW, AWS S3 …).

`S3RecordingStorage` implements `media.storage.RecordingStorage`. What is being recorded stays
on local disk exactly as with `LocalRecordingStorage` (``partial/``, crash safe, recovered at
the next start); only the finished file goes to the bucket:

1. `commit` moves the finalized (remuxed, hashed, fsynced) file durably into the local
   *outbox* (``<RECORDINGS_DIR>/outbox/<key>``), an atomic rename: from then on it is a finished
   recording, whatever the bucket does.
2. `RecordingUploads.upload` sends it to the bucket (multipart above the part size), reads the
   object back and compares its SHA-256 with the local file's, and only then removes the local
   copy. A bucket that does not answer, refuses, or returns different bytes leaves the local
   file where it is; `RecordingUploads.retry` (every `RECORDINGS_S3_RETRY_SECONDS`, and at
   start-up) tries again. An outage is logged once when it starts and once when it ends.

Reads (`size`, `open_range`) serve the outbox copy while there is one (it is removed only once
the bucket holds the same bytes), otherwise byte ranges of the object. A bucket that does not
answer makes a read raise `RecordingStorageUnavailable` (503 to the player).

The client is MinIO's Python SDK (`minio`): a blocking client, as the `RecordingStorage` port
is (finalizing already runs in a worker thread, range reads in the executor), with multipart
upload and ranged GET, and few dependencies (urllib3, certifi, argon2-cffi, pycryptodome).
Everything here is blocking; async callers use a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from media.bucket_config import BucketConfig
from media.storage import (
    KeyedFolder,
    RecordingNotFound,
    fsync_directory,
    key_parts,
    replace_durably,
)
from rooms.calls.media_port import RecordingStorageUnavailable

log = logging.getLogger(__name__)

OUTBOX_DIR = "outbox"
HASH_CHUNK_BYTES = 1 << 20
MIN_PART_BYTES = 5 * 1024 * 1024
"""S3's smallest multipart part (all but the last)."""
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})


class Bucket:
    """One bucket, through MinIO's client, with the errors sorted into found / missing /
    unavailable. Blocking."""

    def __init__(self, config: BucketConfig) -> None:
        parts = urlsplit(config.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) endpoint: {config.endpoint!r}")
        self.config = config
        self.name = config.bucket
        timeout = urllib3.Timeout(connect=config.timeout_seconds, read=config.timeout_seconds)
        self.client = Minio(
            parts.netloc,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=parts.scheme == "https",
            region=config.region,
            # No retries of its own: an outage is met by the outbox and its retry loop, and a
            # player by a clear 503, both at once rather than after minutes of back-off.
            http_client=urllib3.PoolManager(
                timeout=timeout, retries=urllib3.Retry(total=0, redirect=0), maxsize=10
            ),
        )

    def object_name(self, key: str) -> str:
        key_parts(key)
        return f"{self.config.prefix}{key}"

    def put(self, key: str, path: Path, sha256: str) -> str:
        """Upload the file (multipart above the part size); its ETag."""
        result = self.client.fput_object(
            self.name,
            self.object_name(key),
            str(path),
            content_type="application/octet-stream",
            metadata={"sha256": sha256},
            part_size=max(MIN_PART_BYTES, self.config.part_bytes),
        )
        return str(result.etag)

    def sha256(self, key: str) -> tuple[str, int]:
        """SHA-256 and size of the stored object, read back in full."""
        response = self.client.get_object(self.name, self.object_name(key))
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in response.stream(HASH_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
        finally:
            response.close()
            response.release_conn()
        return digest.hexdigest(), size

    def size(self, key: str) -> int:
        with _sorted(key):
            stat = self.client.stat_object(self.name, self.object_name(key))
        return int(stat.size or 0)

    def read(self, key: str, start: int, length: int) -> bytes:
        with _sorted(key):
            response = self.client.get_object(
                self.name, self.object_name(key), offset=start, length=length
            )
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except RecordingNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.remove_object(self.name, self.object_name(key))

    def ensure(self) -> None:
        """Create the bucket if it is not there (needs the right to; an error otherwise)."""
        if not self.client.bucket_exists(self.name):
            self.client.make_bucket(self.name, location=self.config.region)


@contextlib.contextmanager
def _sorted(key: str) -> Iterator[None]:
    """Turns the client's errors into `RecordingNotFound` (no such object) or
    `RecordingStorageUnavailable` (everything else: refused, timed out, denied, 5xx)."""
    try:
        yield
    except S3Error as exc:
        if exc.code in MISSING_CODES:
            raise RecordingNotFound(key) from None
        raise _unavailable(exc) from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: BaseException) -> RecordingStorageUnavailable:
    return RecordingStorageUnavailable(
        f"the recording storage (S3 bucket) did not answer: {describe(exc)}"
    )


def describe(exc: BaseException) -> str:
    """One line on why the bucket failed, without the client's long reprs."""
    if isinstance(exc, S3Error):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return type(exc.reason).__name__
    return type(exc).__name__


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class UploadMismatch(RuntimeError):
    """The bucket returned other bytes than were sent."""


UploadListener = Callable[[str, int], None]
"""(outcome, bytes): told of every upload attempt — `uploaded`, `failed` or `mismatch`."""


class RecordingUploads:
    """Moves finished files from the local outbox into the bucket, checked by SHA-256.

    `upload(key)` is the finalize step; `retry()` offers every file still in the outbox again.
    Both are blocking and may be called from any thread of the process that recorded (a media
    node, or the embedded server): uploads are serialized by a lock, so a retry never races
    the upload that a finalize started.
    """

    def __init__(self, outbox: KeyedFolder, bucket: Bucket) -> None:
        self.outbox = outbox
        self.bucket = bucket
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.reason = ""
        self.listeners: list[UploadListener] = []

    def upload(self, key: str) -> bool:
        """Send the outbox file of `key` to the bucket, check it, remove it locally; True when
        the bucket has it. On failure the local file stays for `retry`."""
        with self._lock:
            path = self.outbox.path(key)
            if not path.is_file():
                return self.bucket.exists(key)
            sha256, size = file_sha256(path)
            try:
                self.bucket.put(key, path, sha256)
                stored, stored_size = self.bucket.sha256(key)
                if (stored, stored_size) != (sha256, size):
                    raise UploadMismatch(
                        f"the bucket returned {stored_size} bytes with SHA-256 {stored}, "
                        f"sent {size} bytes with {sha256}"
                    )
            except UploadMismatch as exc:
                log.error("recording %s: upload not kept (%s); the local file stays", key, exc)
                self._tell("mismatch", size)
                return False
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
                self._failed(describe(exc))
                self._tell("failed", size)
                return False
            path.unlink()
            fsync_directory(path.parent)
            self._reached(key, size)
            self._tell("uploaded", size)
            return True

    def pending(self) -> list[str]:
        """The keys of the files waiting in the outbox (oldest first)."""
        root = self.outbox.dir
        found: list[tuple[float, str]] = []
        for path in root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(root).as_posix()
                try:
                    key_parts(key)
                except ValueError:
                    continue
                found.append((path.stat().st_mtime, key))
        return [key for _, key in sorted(found)]

    def retry(self) -> int:
        """Offer every waiting file again (stops at the first failure: the bucket is down);
        how many were uploaded."""
        done = 0
        for key in self.pending():
            if not self.upload(key):
                break
            done += 1
        return done

    def _failed(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.reason = reason
            log.warning(
                "recording bucket %s unreachable (%s): finished recordings stay in %s and are "
                "offered again every %.0f s",
                self.bucket.name,
                reason,
                self.outbox.dir,
                self.bucket.config.retry_seconds,
            )

    def _reached(self, key: str, size: int) -> None:
        if self.down_since is not None:
            log.info(
                "recording bucket %s reachable again after %.1f s",
                self.bucket.name,
                time.monotonic() - self.down_since,
            )
            self.down_since = None
        log.info(
            "recording %s uploaded to bucket %s (%d bytes, SHA-256 checked)",
            key,
            self.bucket.name,
            size,
        )

    def _tell(self, outcome: str, size: int) -> None:
        for listener in self.listeners:
            listener(outcome, size)


class S3RecordingStorage:
    """`RecordingStorage` with finished files in a bucket (partial files stay local)."""

    def __init__(self, root: Path, bucket: Bucket) -> None:
        self.root = root.absolute()
        self._partial_dir = self.root / "partial"
        self._partial_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = KeyedFolder(self.root / OUTBOX_DIR)
        self.bucket = bucket
        self.uploads = RecordingUploads(self.outbox, bucket)

    @property
    def partial_dir(self) -> Path:
        return self._partial_dir

    def staging_path(self, key: str) -> Path:
        final = self.outbox.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name}.staging")

    def commit(self, key: str, staged: Path) -> None:
        """Durably into the outbox (the finished file is safe from here on), then to the
        bucket if it answers; if not, `uploads.retry` sends it later."""
        final = self.outbox.path(key)
        with staged.open("rb") as f:
            os.fsync(f.fileno())
        replace_durably(staged, final)
        self.uploads.upload(key)

    def exists(self, key: str) -> bool:
        if self.outbox.path(key).is_file():
            return True
        try:
            return self.bucket.exists(key)
        except RecordingStorageUnavailable:
            return False

    def size(self, key: str) -> int:
        try:
            return self.outbox.path(key).stat().st_size
        except FileNotFoundError:
            return self.bucket.size(key)

    def open_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"bad byte range [{start}, {end})")
        try:
            fd = self.outbox.open_for_reading(key)
        except FileNotFoundError:
            pass
        else:
            try:
                size = os.fstat(fd).st_size
                return os.pread(fd, max(0, min(end, size) - start), start)
            finally:
                os.close(fd)
        if end == start:
            return b""
        return self.bucket.read(key, start, end - start)


async def keep_uploading(uploads: RecordingUploads, every_seconds: float) -> None:
    """Offer the outbox to the bucket now and then every `every_seconds`, until cancelled."""
    while True:
        try:
            await asyncio.to_thread(uploads.retry)
        except Exception:
            log.exception("offering finished recordings to the bucket again failed")
        await asyncio.sleep(every_seconds)
