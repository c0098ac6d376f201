from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app.errors import Unauthorized
from app.security import decode_token, issue_token

SECRET = "s" * 40
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_a_token_round_trips_its_subject_and_audience():
    token, claims = issue_token(secret_key=SECRET, audience="mp", subject=42, ttl_seconds=60,
                                now=NOW)
    decoded = decode_token(token, secret_key=SECRET, audience="mp", now=NOW)
    assert decoded == claims
    assert decoded.subject == 42
    assert decoded.expires_at == NOW + timedelta(seconds=60)


def test_each_token_has_its_own_id():
    first, a = issue_token(secret_key=SECRET, audience="mp", subject=1, ttl_seconds=60, now=NOW)
    second, b = issue_token(secret_key=SECRET, audience="mp", subject=1, ttl_seconds=60, now=NOW)
    assert a.token_id != b.token_id and first != second


def test_an_expired_token_is_refused():
    token, _ = issue_token(secret_key=SECRET, audience="mp", subject=1, ttl_seconds=60, now=NOW)
    with pytest.raises(Unauthorized) as caught:
        decode_token(token, secret_key=SECRET, audience="mp", now=NOW + timedelta(seconds=60))
    assert caught.value.code == "token_expired"


def test_a_token_signed_with_another_secret_is_refused():
    token, _ = issue_token(secret_key="x" * 40, audience="mp", subject=1, ttl_seconds=60)
    with pytest.raises(Unauthorized) as caught:
        decode_token(token, secret_key=SECRET, audience="mp")
    assert caught.value.code == "invalid_token"


def test_a_console_token_is_not_a_mini_program_token():
    token, _ = issue_token(secret_key=SECRET, audience="console", subject=1, ttl_seconds=60)
    with pytest.raises(Unauthorized):
        decode_token(token, secret_key=SECRET, audience="mp")


def test_a_token_signed_with_the_raw_secret_key_is_refused():
    """Tokens are signed with a derived key: knowing a token format is not enough to forge."""
    forged = jwt.encode({"sub": "1", "aud": "mp", "jti": "x", "iat": NOW,
                         "exp": NOW + timedelta(hours=1)}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        decode_token(forged, secret_key=SECRET, audience="mp", now=NOW)


@pytest.mark.parametrize("algorithm_header", ["none"])
def test_an_unsigned_token_is_refused(algorithm_header):
    unsigned = jwt.encode({"sub": "1", "aud": "mp", "jti": "x", "iat": NOW,
                           "exp": NOW + timedelta(hours=1)}, None, algorithm=algorithm_header)
    with pytest.raises(Unauthorized):
        decode_token(unsigned, secret_key=SECRET, audience="mp", now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000])
def test_garbage_is_refused(garbage):
    with pytest.raises(Unauthorized):
        decode_token(garbage, secret_key=SECRET, audience="mp")
