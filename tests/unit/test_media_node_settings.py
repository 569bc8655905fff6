"""The media node settings: refused with a message naming the variable."""

from __future__ import annotations

import pytest

from teleconsult.config import ConfigError, load_settings


def test_the_default_keeps_media_in_the_signaling_process() -> None:
    settings = load_settings({})
    assert settings.media_nodes == "local"
    assert settings.media_node_id == ""
    assert (settings.media_request_timeout, settings.media_node_lease) == (5.0, 2.0)


def test_remote_media_nodes_are_found_through_redis() -> None:
    settings = load_settings(
        {
            "MEDIA_NODES": "redis",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "MEDIA_NODE_ID": "media-1",
            "MEDIA_REQUEST_TIMEOUT_SECONDS": "2.5",
            "MEDIA_NODE_LEASE_SECONDS": "3",
        }
    )
    assert settings.media_nodes == "redis"
    assert settings.media_node_id == "media-1"
    assert (settings.media_request_timeout, settings.media_node_lease) == (2.5, 3.0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEDIA_NODES": "grpc"}, "MEDIA_NODES must be one of local, redis"),
        ({"MEDIA_NODES": "redis"}, "MEDIA_NODES=redis needs REDIS_URL"),
        ({"MEDIA_NODE_ID": "../other"}, "MEDIA_NODE_ID must be"),
        ({"MEDIA_NODE_ID": ".hidden"}, "MEDIA_NODE_ID must be"),
        ({"MEDIA_NODE_ID": "x" * 64}, "MEDIA_NODE_ID must be"),
        ({"MEDIA_REQUEST_TIMEOUT_SECONDS": "soon"}, "MEDIA_REQUEST_TIMEOUT_SECONDS must be a"),
        ({"MEDIA_REQUEST_TIMEOUT_SECONDS": "0"}, "MEDIA_REQUEST_TIMEOUT_SECONDS must be more"),
        ({"MEDIA_NODE_LEASE_SECONDS": "-1"}, "MEDIA_NODE_LEASE_SECONDS must be more"),
        ({"MEDIA_NODE_LEASE_SECONDS": "nan"}, "MEDIA_NODE_LEASE_SECONDS must be more"),
        ({"MEDIA_NODE_LEASE_SECONDS": "inf"}, "MEDIA_NODE_LEASE_SECONDS must be more"),
    ],
)
def test_bad_media_node_settings_are_refused_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)
