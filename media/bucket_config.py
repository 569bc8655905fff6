"""Where finished recordings go when they go to an S3-compatible bucket (`RECORDINGS_S3_*`).

Kept apart from `media.object_storage` so that reading the settings does not load the S3
client (the CLI starts without it; the server loads it only when a bucket is configured).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BucketConfig:
    """Where finished recordings go (the `RECORDINGS_S3_*` settings)."""

    endpoint: str
    """``http://host:port`` or ``https://host[:port]``: the scheme says whether TLS is used."""
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    prefix: str = ""
    """Put before every key (``recordings/`` → ``recordings/<consult>/<file>``)."""
    part_bytes: int = 16 * 1024 * 1024
    """Files above this go up as a multipart upload in parts of this size (at least 5 MiB)."""
    timeout_seconds: float = 10.0
    """Connect and read timeout of one request; a bucket slower than this counts as down."""
    retry_seconds: float = 30.0
    """How often files left in the outbox are offered to the bucket again."""
