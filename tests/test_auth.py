"""Token verification with real keys: every way a token can be wrong, and each key source."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.utils import base64url_encode

from db.errors import ConfigurationError
from db.settings import Settings
from graph.auth import AuthenticationError, Authenticator, check_bind, is_loopback_host

SECRET = "test-secret-that-is-long-enough-for-hs256!"
ISSUER = "https://issuer.test"
AUDIENCE = "lct-graph"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def hs_authenticator() -> Authenticator:
    return Authenticator(settings(jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE))


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_valid_hs256_token_names_the_user() -> None:
    viewer = hs_authenticator().authenticate(bearer(jwt.encode(claims(), SECRET)))
    assert viewer.user_id == "alice"
    assert not viewer.development


def test_no_header_is_anonymous() -> None:
    assert hs_authenticator().authenticate(None).is_anonymous


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (bearer(jwt.encode(claims(exp=int(time.time()) - 3600), SECRET)), "expired"),
        (bearer(jwt.encode(claims(), "another-secret-that-is-long-enough-too!")), "signature"),
        (bearer(jwt.encode(claims(iss="https://evil.test"), SECRET)), "issuer"),
        (bearer(jwt.encode(claims(aud="another-api"), SECRET)), "audience"),
        (bearer(jwt.encode(claims(exp=None), SECRET)), "`exp`"),
        (bearer(jwt.encode(claims(sub=None), SECRET)), "`sub`"),
        (bearer(jwt.encode(claims(iss=None), SECRET)), "`iss`"),
        (bearer(jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET)), "not valid yet"),
        # (a key of 64 bytes, as HS512 asks; the algorithm is what is refused)
        (bearer(jwt.encode(claims(), SECRET * 2, algorithm="HS512")), "algorithm"),
        (bearer(jwt.encode(claims(), None, algorithm="none")), "algorithm"),
        (bearer("not.a.token"), "malformed"),
        ("Basic YWxpY2U6cGFzcw==", "Bearer"),
        ("Bearer", "Bearer"),
    ],
)
def test_bad_tokens_are_refused_with_a_clear_message(header: str, message: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        hs_authenticator().authenticate(header)
    assert message in caught.value.message


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private: Any) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_rs256_with_a_public_key_inline_or_in_a_file(tmp_path: Path) -> None:
    private = rsa_key()
    token = jwt.encode(claims(), private, algorithm="RS256")
    inline = Authenticator(settings(jwt_public_key=public_pem(private), jwt_audience=AUDIENCE))
    assert inline.authenticate(bearer(token)).user_id == "alice"
    path = tmp_path / "key.pem"
    path.write_text(public_pem(private))
    from_file = Authenticator(settings(jwt_public_key=str(path), jwt_audience=AUDIENCE))
    assert from_file.authenticate(bearer(token)).user_id == "alice"
    with pytest.raises(AuthenticationError, match="signature"):
        inline.authenticate(bearer(jwt.encode(claims(), rsa_key(), algorithm="RS256")))


def test_algorithm_confusion_is_refused() -> None:
    """A token HMAC-signed with the public key as its secret must not pass."""
    pem = public_pem(rsa_key())
    authenticator = Authenticator(settings(jwt_public_key=pem))
    header = base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = base64url_encode(json.dumps(claims(aud=None, iss=None)).encode())
    signature = hmac.new(pem.encode(), header + b"." + body, hashlib.sha256).digest()
    token = b".".join([header, body, base64url_encode(signature)]).decode()
    with pytest.raises(AuthenticationError, match="algorithm"):
        authenticator.authenticate(bearer(token))


def test_es256_public_key() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    authenticator = Authenticator(settings(jwt_public_key=public_pem(private)))
    assert authenticator.algorithms == ["ES256"]
    token = jwt.encode(claims(aud=None), private, algorithm="ES256")
    assert authenticator.authenticate(bearer(token)).user_id == "alice"


def test_jwks_file_picks_the_key_by_kid(tmp_path: Path) -> None:
    first, second = rsa_key(), ec.generate_private_key(ec.SECP256R1())
    keys = []
    for key_id, private, algorithm in (("one", first, "RS256"), ("two", second, "ES256")):
        jwk = json.loads(
            jwt.algorithms.get_default_algorithms()[algorithm].to_jwk(private.public_key())
        )
        jwk.update(kid=key_id, alg=algorithm, use="sig")
        keys.append(jwk)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    authenticator = Authenticator(settings(jwks_file=path, jwt_issuer=ISSUER))
    for key_id, private, algorithm in (("one", first, "RS256"), ("two", second, "ES256")):
        token = jwt.encode(
            claims(aud=None, sub=f"user-{key_id}"),
            private,
            algorithm=algorithm,
            headers={"kid": key_id},
        )
        assert authenticator.authenticate(bearer(token)).user_id == f"user-{key_id}"
    unknown = jwt.encode(claims(aud=None), rsa_key(), algorithm="RS256", headers={"kid": "x"})
    with pytest.raises(AuthenticationError, match="key this server does not know"):
        authenticator.authenticate(bearer(unknown))
    wrong = jwt.encode(claims(aud=None), rsa_key(), algorithm="RS256", headers={"kid": "one"})
    with pytest.raises(AuthenticationError, match="signature"):
        authenticator.authenticate(bearer(wrong))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jwt_secret": "short"}, "at least 32 bytes"),
        ({"jwt_secret": SECRET, "jwt_public_key": "x"}, "only one of"),
        ({"jwt_secret": SECRET, "jwt_algorithms": ["RS256"]}, "cannot be used"),
        ({"jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"}, "PEM"),
        ({"jwt_public_key": "/nonexistent/key.pem"}, "cannot read"),
        ({"jwks_file": "/nonexistent/jwks.json"}, "cannot read"),
    ],
)
def test_unusable_configuration_is_refused_at_start(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Authenticator(settings(**values))


def test_development_mode_is_one_default_user() -> None:
    authenticator = Authenticator(settings(dev_user_id="dev"))
    assert authenticator.development
    viewer = authenticator.authenticate(None)
    assert viewer.user_id == "dev" and viewer.development
    assert "NOT configured" in authenticator.describe()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCT_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("LCT_JWT_ALGORITHMS", "RS256,ES256")
    monkeypatch.setenv("LCT_MAX_DEPTH", "7")
    loaded = Settings(_env_file=None)
    assert loaded.cors_origins == ["https://a.example", "https://b.example"]
    assert loaded.jwt_algorithms == ["RS256", "ES256"]
    assert loaded.max_depth == 7
    assert Settings(_env_file=None, cors_origins=[]).cors_origins == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.evil.com", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_development_mode_refuses_a_public_bind() -> None:
    with pytest.raises(ConfigurationError, match="refusing to listen on 0\\.0\\.0\\.0"):
        check_bind(settings(), "0.0.0.0")
    check_bind(settings(), "127.0.0.1")
    check_bind(settings(), "::1")
    check_bind(settings(jwt_secret=SECRET), "0.0.0.0")
