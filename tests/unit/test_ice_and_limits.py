"""TURN REST credentials, SDP and candidate checks, rate limiting, settings from the environment."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from pathlib import Path

import pytest

from signaling.ice import IceConfig, ice_servers_for, renew_after_seconds, turn_credentials
from signaling.ratelimit import RateLimiter
from signaling.sdp import SdpProblem, check_candidate, check_sdp, utf8_size
from teleconsult.config import (
    ConfigError,
    fhir_identity,
    installation_id_in,
    jwt_secret_in,
    load_settings,
)
from tests.support.sdp import video_sdp

VALID_SDP = video_sdp(bundle=True)


def test_turn_credentials_follow_the_coturn_rest_scheme() -> None:
    username, password = turn_credentials("secret", 42, 600, now=1_000_000)
    assert username == "1000600:42"
    expected = base64.b64encode(hmac.new(b"secret", b"1000600:42", hashlib.sha1).digest())
    assert password == expected.decode()


def test_no_ice_servers_by_default() -> None:
    assert ice_servers_for(IceConfig(), 1) == []


def test_turn_is_added_with_fresh_credentials_when_a_secret_is_set() -> None:
    config = IceConfig(
        servers=[{"urls": "stun:ice.hospital.example:3478"}],
        turn_urls=["turn:turn.hospital.example:3478"],
        turn_secret="k",
    )
    servers = ice_servers_for(config, 7)
    assert servers[0] == {"urls": "stun:ice.hospital.example:3478"}
    assert servers[1]["urls"] == ["turn:turn.hospital.example:3478"]
    assert servers[1]["username"].endswith(":7")


def test_pages_renew_minted_credentials_at_the_renew_percent_of_their_lifetime() -> None:
    minted = IceConfig(turn_urls=["turn:turn.hospital.example:3478"], turn_secret="k")
    assert renew_after_seconds(minted) == 2880  # 80 % of an hour
    assert renew_after_seconds(replace(minted, turn_ttl_seconds=600, turn_renew_percent=50)) == 300
    assert renew_after_seconds(replace(minted, turn_renew_percent=0)) is None  # turned off
    # Nothing minted, nothing to renew (ICE_SERVERS' own credentials are the operator's).
    assert (
        renew_after_seconds(IceConfig(servers=[{"urls": "turn:t.example", "username": "u"}]))
        is None
    )


def test_a_renew_percent_beyond_95_is_refused() -> None:
    assert load_settings({"TURN_RENEW_PERCENT": "95"}).ice.turn_renew_percent == 95
    with pytest.raises(ConfigError, match="TURN_RENEW_PERCENT"):
        load_settings({"TURN_RENEW_PERCENT": "96"})


def test_a_real_looking_sdp_passes() -> None:
    check_sdp(VALID_SDP, 32 * 1024)


@pytest.mark.parametrize(
    ("sdp", "problem"),
    [
        ("hello", "too short"),
        ("v=1\r\no=x\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n", "version"),
        ("o=x\r\nv=0\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n", "begin with"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no media"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\nnot a line\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\na=\x00\r\n", "line 5"),
    ],
)
def test_malformed_sdp_is_refused_with_the_reason(sdp: str, problem: str) -> None:
    with pytest.raises(SdpProblem, match=problem):
        check_sdp(sdp, 32 * 1024)


def test_an_oversized_sdp_is_refused() -> None:
    with pytest.raises(SdpProblem, match="larger than 100 bytes"):
        check_sdp(VALID_SDP + "a=x" * 50, 100)


def test_candidates_must_be_one_candidate_line() -> None:
    check_candidate("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", 1024)
    check_candidate("", 1024)  # end-of-candidates marker from some browsers
    for bad in ("a=candidate:1", "candidate:1\r\na=evil", "candidate:" + "1" * 2000):
        with pytest.raises(SdpProblem):
            check_candidate(bad, 1024)


def test_a_lone_surrogate_is_an_sdp_problem_not_a_crash() -> None:
    with pytest.raises(SdpProblem):
        check_sdp(VALID_SDP + "a=x-\ud800\r\n", 32 * 1024)
    with pytest.raises(SdpProblem, match="lone surrogate"):
        check_candidate("candidate:1 1 udp 1 127.0.0.1 9 typ host \udfff", 1024)


def test_sizes_are_utf8_bytes() -> None:
    assert utf8_size("v=0") == 3
    assert utf8_size("中") == 3
    assert utf8_size("\ud800") == 3


def test_the_rate_limiter_allows_the_limit_then_refuses_until_the_window_passes() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.allow("u") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("other")
    now[0] = 61.0
    assert limiter.allow("u")


def test_settings_have_the_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.database_url == f"sqlite:///{tmp_path / 'teleconsult.db'}"
    assert settings.ice.servers == []
    assert settings.redis_url is None
    assert (settings.media_port_min, settings.media_port_max) == (None, None)
    assert settings.relay_video_codec == "VP8"
    assert settings.limits.signals_per_second == 200
    assert settings.media_address == "127.0.0.1"  # listening on loopback: relay on loopback


def test_a_server_listening_beyond_loopback_announces_its_configured_media_address(
    tmp_path: Path,
) -> None:
    assert load_settings({"DATA_DIR": str(tmp_path), "HOST": "0.0.0.0"}).media_address is None
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "HOST": "0.0.0.0", "MEDIA_ADDRESS": "10.1.2.3"}
    )
    assert settings.media_address == "10.1.2.3"
    assert settings.recordings_dir == tmp_path / "media"
    assert settings.playback_ttl.total_seconds() == 600


def test_the_media_port_range_and_codec_are_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "MEDIA_PORT_MIN": "40000",
            "MEDIA_PORT_MAX": "40100",
            "RELAY_VIDEO_CODEC": "h264",
        }
    )
    assert (settings.media_port_min, settings.media_port_max) == (40000, 40100)
    assert settings.relay_video_codec == "H264"


def test_limits_are_overridable_by_their_upper_case_names(tmp_path: Path) -> None:
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "MAX_SDP_BYTES": "1000", "MAX_PARTICIPANTS_PER_CONSULT": "3"}
    )
    assert settings.limits.max_sdp_bytes == 1000
    assert settings.limits.max_participants_per_consult == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("ICE_SERVERS", "[1]"),
        ("ICE_SERVERS", "{"),
        ("MAX_SDP_BYTES", "-1"),
        ("MEDIA_PORT_MIN", "40000"),
        ("RELAY_VIDEO_CODEC", "VP9"),
        ("TURN_RENEW_PERCENT", "-1"),
        ("TURN_RENEW_PERCENT", "most"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_an_upside_down_media_port_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="MEDIA_PORT_MIN"):
        load_settings({"MEDIA_PORT_MIN": "50000", "MEDIA_PORT_MAX": "40000"})


def test_the_fhir_identity_is_public_url_or_an_installation_id_kept_in_the_data_dir(
    tmp_path: Path,
) -> None:
    first = installation_id_in(tmp_path)
    assert installation_id_in(tmp_path) == first and len(first) == 32
    unset = load_settings({"DATA_DIR": str(tmp_path)})
    assert fhir_identity(unset) == f"urn:teleconsult:{first}"
    public = load_settings({"DATA_DIR": str(tmp_path), "PUBLIC_URL": "https://tc.example.org/"})
    assert fhir_identity(public) == "https://tc.example.org"


def test_the_jwt_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = jwt_secret_in(tmp_path)
    assert jwt_secret_in(tmp_path) == first and len(first) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_the_ice_transport_policy_is_all_unless_relay_is_asked_for(tmp_path: Path) -> None:
    assert load_settings({"DATA_DIR": str(tmp_path)}).ice.transport_policy == "all"
    relay = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "ICE_TRANSPORT_POLICY": "relay",
            "TURN_URLS": "turn:127.0.0.1:3478?transport=udp",
            "TURN_SECRET": "k",
        }
    )
    assert relay.ice.transport_policy == "relay"
    in_ice_servers = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "ICE_TRANSPORT_POLICY": "RELAY",
            "ICE_SERVERS": '[{"urls": ["turns:turn.example:5349"], "credential": "c"}]',
        }
    )
    assert in_ice_servers.ice.transport_policy == "relay"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"ICE_TRANSPORT_POLICY": "turn-only"}, "must be one of all, relay"),
        ({"ICE_TRANSPORT_POLICY": "relay"}, "needs a TURN server"),
        (
            {"ICE_TRANSPORT_POLICY": "relay", "ICE_SERVERS": '[{"urls": "stun:127.0.0.1:3478"}]'},
            "needs a TURN server",
        ),
        ({"ICE_TRANSPORT_POLICY": "relay", "TURN_URLS": "turn:t.example"}, "needs a TURN server"),
    ],
)
def test_a_relay_policy_without_turn_or_an_unknown_policy_is_refused(
    tmp_path: Path, env: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings({"DATA_DIR": str(tmp_path), **env})
