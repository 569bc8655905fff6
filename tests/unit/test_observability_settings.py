"""Settings of recordings in S3, of /metrics and of the log format: read from the environment,
local disk and plain text by default, and an unusable value stops start-up naming it."""

from __future__ import annotations

import pytest

from teleconsult.config import ConfigError, load_settings

S3 = {
    "RECORDINGS_S3_ENDPOINT": "http://127.0.0.1:8333",
    "RECORDINGS_S3_BUCKET": "recordings",
    "RECORDINGS_S3_ACCESS_KEY": "key",
    "RECORDINGS_S3_SECRET_KEY": "secret",
}


def test_recordings_stay_on_local_disk_unless_a_bucket_is_named() -> None:
    assert load_settings({}).recordings_s3 is None


def test_a_bucket_is_read_with_its_defaults() -> None:
    config = load_settings(S3).recordings_s3
    assert config is not None
    assert (config.endpoint, config.bucket, config.region, config.prefix) == (
        "http://127.0.0.1:8333",
        "recordings",
        "us-east-1",
        "",
    )
    assert (config.part_bytes, config.timeout_seconds, config.retry_seconds) == (
        16 * 1024 * 1024,
        10,
        30,
    )
    tuned = load_settings(
        {
            **S3,
            "RECORDINGS_S3_PREFIX": "teleconsult/recordings/",
            "RECORDINGS_S3_PART_MB": "64",
            "RECORDINGS_S3_RETRY_SECONDS": "5",
        }
    ).recordings_s3
    assert tuned is not None
    assert (tuned.prefix, tuned.part_bytes, tuned.retry_seconds) == (
        "teleconsult/recordings/",
        64 * 1024 * 1024,
        5,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"RECORDINGS_S3_BUCKET": ""}, "RECORDINGS_S3_BUCKET"),
        ({"RECORDINGS_S3_ENDPOINT": ""}, "RECORDINGS_S3_ENDPOINT"),
        ({"RECORDINGS_S3_ENDPOINT": "ftp://s3.example"}, "RECORDINGS_S3_ENDPOINT"),
        ({"RECORDINGS_S3_ENDPOINT": "http://s3.example/bucket"}, "RECORDINGS_S3_ENDPOINT"),
        ({"RECORDINGS_S3_BUCKET": "Not_A_Bucket"}, "RECORDINGS_S3_BUCKET"),
        ({"RECORDINGS_S3_SECRET_KEY": ""}, "RECORDINGS_S3_SECRET_KEY"),
        ({"RECORDINGS_S3_PREFIX": "/abs"}, "RECORDINGS_S3_PREFIX"),
        ({"RECORDINGS_S3_PREFIX": "../up/"}, "RECORDINGS_S3_PREFIX"),
        ({"RECORDINGS_S3_PART_MB": "4"}, "RECORDINGS_S3_PART_MB"),
        ({"RECORDINGS_S3_RETRY_SECONDS": "0"}, "RECORDINGS_S3_RETRY_SECONDS"),
        ({"RECORDINGS_S3_TIMEOUT_SECONDS": "soon"}, "RECORDINGS_S3_TIMEOUT_SECONDS"),
    ],
)
def test_an_unusable_bucket_setting_stops_start_up_naming_it(
    change: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({**S3, **change})


def test_metrics_are_for_loopback_and_logs_are_text_unless_told_otherwise() -> None:
    settings = load_settings({})
    assert (settings.metrics_token, settings.log_format) == ("", "text")
    settings = load_settings({"METRICS_TOKEN": "x" * 16, "LOG_FORMAT": "JSON"})
    assert (settings.metrics_token, settings.log_format) == ("x" * 16, "json")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_an_unusable_metrics_or_log_setting_stops_start_up_naming_it(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)
