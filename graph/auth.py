"""Who is asking: bearer JWT authentication, or local development mode when none is configured.

Exactly one key source is configured through the environment: `LCT_JWT_SECRET` (HS256),
`LCT_JWT_PUBLIC_KEY` (a PEM RSA or EC key, RS256 / ES256) or `LCT_JWKS_FILE` (a JSON Web Key Set,
keys picked by the token's `kid`). Expiry is always checked, and issuer and audience when they are
configured; the `sub` claim is the user id. A request without a token is anonymous and reads
public conversations only.

With no key configured the server runs in local development mode: every request acts as one
default user, and only loopback connections are served (see `graph.http`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from db.errors import ConfigurationError
from db.settings import Settings

logger = logging.getLogger("lct.auth")

SYMMETRIC_ALGORITHMS = {"HS256", "HS384", "HS512"}
ASYMMETRIC_ALGORITHMS = {
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
}
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class AuthenticationError(Exception):
    """A token was sent and is not acceptable; the message is shown to the client (HTTP 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """The acting user of one request; `user_id` is None for an anonymous request."""

    user_id: str | None
    development: bool = False
    # The token carries the admin claim (`LCT_ADMIN_CLAIM`): may run operations outside the
    # trusted documents when `LCT_TRUSTED_DOCUMENTS_ADMIN_BYPASS` allows it (graph/persisted.py).
    admin: bool = False

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None


ANONYMOUS = Viewer(user_id=None)


def is_loopback_host(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names of the local machine."""
    if host is None:
        return False
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _read_text(value: str, what: str) -> str:
    """A PEM given inline, or a path to a file that holds it."""
    if value.lstrip().startswith("-----BEGIN"):
        return value.replace("\\n", "\n")
    path = Path(value).expanduser()
    try:
        return path.read_text()
    except OSError as error:
        raise ConfigurationError(f"{what}: cannot read {path}: {error.strerror}") from None


class Authenticator:
    """Verifies bearer tokens against the configured key; built once per app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.development = not settings.auth_configured
        self._key: Any = None
        self._jwks: dict[str, jwt.PyJWK] = {}
        self.algorithms: list[str] = []
        if self.development:
            return
        sources = [
            name
            for name, value in (
                ("LCT_JWT_SECRET", settings.jwt_secret),
                ("LCT_JWT_PUBLIC_KEY", settings.jwt_public_key),
                ("LCT_JWKS_FILE", settings.jwks_file),
            )
            if value
        ]
        if len(sources) > 1:
            raise ConfigurationError(
                f"set only one of {', '.join(sources)}: the token's key must be unambiguous"
            )
        requested = settings.jwt_algorithms
        if settings.jwt_secret:
            if len(settings.jwt_secret.encode()) < 32:
                raise ConfigurationError(
                    "LCT_JWT_SECRET must be at least 32 bytes (256 bits) for HS256"
                )
            self._key = settings.jwt_secret
            self.algorithms = requested or ["HS256"]
            allowed = SYMMETRIC_ALGORITHMS
        elif settings.jwt_public_key:
            pem = _read_text(settings.jwt_public_key, "LCT_JWT_PUBLIC_KEY")
            try:
                key = load_pem_public_key(pem.encode())
            except ValueError:
                raise ConfigurationError(
                    "LCT_JWT_PUBLIC_KEY is not a PEM public key (-----BEGIN PUBLIC KEY----- ...)"
                ) from None
            if isinstance(key, rsa.RSAPublicKey):
                default = ["RS256"]
            elif isinstance(key, ec.EllipticCurvePublicKey):
                default = ["ES256"]
            else:
                default = ["EdDSA"]
            self._key = key
            self.algorithms = requested or default
            allowed = ASYMMETRIC_ALGORITHMS
        else:
            assert settings.jwks_file is not None
            try:
                key_set = jwt.PyJWKSet.from_json(Path(settings.jwks_file).read_text())
            except OSError as error:
                raise ConfigurationError(
                    f"LCT_JWKS_FILE: cannot read {settings.jwks_file}: {error.strerror}"
                ) from None
            except (jwt.PyJWKSetError, json.JSONDecodeError, ValueError) as error:
                raise ConfigurationError(
                    f"LCT_JWKS_FILE holds no usable key set: {error}"
                ) from None
            self._jwks = {key.key_id or "": key for key in key_set.keys}
            self.algorithms = requested or ["RS256", "ES256"]
            allowed = ASYMMETRIC_ALGORITHMS
        refused = [name for name in self.algorithms if name not in allowed]
        if refused:
            raise ConfigurationError(
                f"LCT_JWT_ALGORITHMS: {', '.join(refused)} cannot be used with {sources[0]}"
                f" (allowed: {', '.join(sorted(allowed))})"
            )

    def describe(self) -> str:
        """One line for the start-up log."""
        if self.development:
            return (
                "authentication is NOT configured: local development mode, every request acts as"
                f" user {self.settings.dev_user_id!r}; only loopback connections are served."
                " Set LCT_JWT_SECRET, LCT_JWT_PUBLIC_KEY or LCT_JWKS_FILE for any other use."
            )
        checks = ["expiry"]
        if self.settings.jwt_issuer:
            checks.append(f"issuer {self.settings.jwt_issuer!r}")
        if self.settings.jwt_audience:
            checks.append(f"audience {self.settings.jwt_audience!r}")
        return (
            f"bearer JWT authentication ({', '.join(self.algorithms)});"
            f" checks: {', '.join(checks)}; requests without a token are anonymous"
        )

    def authenticate(self, authorization: str | None) -> Viewer:
        """The viewer for an `Authorization` header value (None when the header is absent)."""
        if self.development:
            return Viewer(user_id=self.settings.dev_user_id, development=True)
        if authorization is None or not authorization.strip():
            return ANONYMOUS
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("The Authorization header must be `Bearer <token>`.")
        claims = self._claims(token)
        return Viewer(user_id=claims["sub"], admin=claims.get(self.settings.admin_claim) is True)

    def _key_for(self, token: str) -> Any:
        if not self._jwks:
            return self._key
        try:
            key_id = jwt.get_unverified_header(token).get("kid") or ""
        except jwt.DecodeError:
            raise AuthenticationError("The token is malformed.") from None
        if key_id in self._jwks:
            return self._jwks[key_id]
        if not key_id and len(self._jwks) == 1:
            return next(iter(self._jwks.values()))
        raise AuthenticationError("The token was signed with a key this server does not know.")

    def _claims(self, token: str) -> dict[str, Any]:
        """The verified claims; `sub` is a non-empty string."""
        settings = self.settings
        required = ["exp", "sub"]
        if settings.jwt_issuer:
            required.append("iss")
        if settings.jwt_audience:
            required.append("aud")
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=self.algorithms,
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_seconds,
                options={"require": required, "verify_aud": bool(settings.jwt_audience)},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("The token is not valid yet (nbf / iat).") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("The token's signature is invalid.") from None
        except jwt.InvalidAlgorithmError:
            raise AuthenticationError(
                f"The token's algorithm is not accepted (accepted: {', '.join(self.algorithms)})."
            ) from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("The token's audience (aud) is not this API.") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("The token's issuer (iss) is not trusted.") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationError(f"The token has no `{error.claim}` claim.") from None
        except jwt.PyJWTError:
            raise AuthenticationError("The token is malformed.") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthenticationError("The token's `sub` claim must be a non-empty string.")
        return claims


def check_bind(settings: Settings, host: str) -> None:
    """Refuses to serve a non-loopback address in local development mode."""
    if not settings.auth_configured and not is_loopback_host(host):
        raise ConfigurationError(
            f"refusing to listen on {host}: authentication is not configured (local development"
            " mode serves loopback only). Set LCT_JWT_SECRET, LCT_JWT_PUBLIC_KEY or LCT_JWKS_FILE,"
            " or bind 127.0.0.1."
        )
