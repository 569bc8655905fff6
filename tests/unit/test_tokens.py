"""JWTs: signature, expiry, audience and issuer are all checked, each with its own code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from signaling.auth import PlaybackTokens, TokenIssuer, bearer_token
from signaling.errors import ApiError
from tests.unit.fakes import DOCTOR_A

SECRET = "s" * 48


def issuer(audience: str = "teleconsult") -> TokenIssuer:
    return TokenIssuer(SECRET, audience, timedelta(hours=1))


def code_of(token: str | None, verifier: TokenIssuer | None = None) -> str:
    with pytest.raises(ApiError) as caught:
        (verifier or issuer()).verify(token)
    assert caught.value.status == 401
    return caught.value.code


def test_a_fresh_token_names_the_user_role_and_institution() -> None:
    token, expires = issuer().issue(DOCTOR_A)
    claims = issuer().verify(token)
    assert (claims.user_id, claims.role, claims.institution_id) == (
        DOCTOR_A.id,
        DOCTOR_A.role,
        DOCTOR_A.institution_id,
    )
    assert claims.expires_at == expires.replace(microsecond=0)


def test_an_expired_token_is_refused_as_expired() -> None:
    token, _ = issuer().issue(DOCTOR_A, now=datetime.now(UTC) - timedelta(hours=2))
    assert code_of(token) == "token_expired"


def test_a_token_signed_with_another_secret_is_refused_as_invalid() -> None:
    forged, _ = TokenIssuer("f" * 48, "teleconsult", timedelta(hours=1)).issue(DOCTOR_A)
    assert code_of(forged) == "token_invalid"


def test_a_token_for_another_audience_is_refused() -> None:
    token, _ = issuer(audience="billing").issue(DOCTOR_A)
    assert code_of(token) == "token_wrong_audience"


ADMIN_CLAIMS = {
    "sub": "10",
    "role": "admin",
    "inst": 1,
    "aud": "teleconsult",
    "iss": "teleconsult",
    "iat": 0,
    "exp": 2**40,
}


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode(ADMIN_CLAIMS, None, algorithm="none")
    assert code_of(unsigned) == "token_invalid"


def test_a_token_without_expiry_is_refused() -> None:
    no_expiry = {k: v for k, v in ADMIN_CLAIMS.items() if k != "exp"}
    assert code_of(jwt.encode(no_expiry, SECRET, algorithm="HS256")) == "token_invalid"


def test_a_token_expiring_beyond_any_date_is_refused_as_invalid() -> None:
    claims = {**ADMIN_CLAIMS, "role": "exam_room_doctor", "exp": 10**30}
    assert code_of(jwt.encode(claims, SECRET, algorithm="HS256")) == "token_invalid"


def test_garbage_and_missing_tokens_have_their_own_codes() -> None:
    assert code_of("not.a.jwt") == "token_invalid"
    assert code_of(None) == "token_missing"


def test_a_short_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        TokenIssuer("short", "teleconsult", timedelta(hours=1))


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None


# ---- playback links ---------------------------------------------------------------------------

REC = "ab" * 16


def playback() -> PlaybackTokens:
    return PlaybackTokens(SECRET, "teleconsult", timedelta(minutes=10))


def playback_code(token: str | None, recording_id: str = REC) -> str:
    with pytest.raises(ApiError) as caught:
        playback().verify(token, recording_id)
    assert caught.value.status == 401
    return caught.value.code


def test_a_playback_link_opens_its_recording_for_its_user() -> None:
    token, _ = playback().issue(DOCTOR_A, REC)
    assert playback().verify(token, REC) == DOCTOR_A.id


def test_a_playback_link_does_not_open_another_recording() -> None:
    token, _ = playback().issue(DOCTOR_A, REC)
    assert playback_code(token, "cd" * 16) == "token_invalid"


def test_an_expired_playback_link_is_refused_as_expired() -> None:
    token, _ = playback().issue(DOCTOR_A, REC, now=datetime.now(UTC) - timedelta(hours=1))
    assert playback_code(token) == "token_expired"


def test_a_login_token_is_not_a_playback_link_nor_the_other_way_round() -> None:
    login, _ = issuer().issue(DOCTOR_A)
    assert playback_code(login) == "token_wrong_audience"
    link, _ = playback().issue(DOCTOR_A, REC)
    assert code_of(link) == "token_wrong_audience"


def test_a_forged_playback_link_is_refused() -> None:
    forged = PlaybackTokens("f" * 48, "teleconsult", timedelta(minutes=10))
    token, _ = forged.issue(DOCTOR_A, REC)
    assert playback_code(token) == "token_invalid"
    assert playback_code(None) == "token_missing"
