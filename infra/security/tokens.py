"""Bearer tokens (JWT): issue for local use, verify with pinned algorithms and keys.

The algorithm is never taken from the token: the header's `alg` only selects
one of the keys configured for the pinned algorithms, and a token whose `alg`
is not pinned is refused. `exp`, `aud`, `iss` and `sub` are required. With the
jurisdiction tree, a token whose center is at the wrong level for its role
(`domain.access.HOME_LEVELS`) is neither issued nor accepted.
"""

from __future__ import annotations

import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt

from domain.access import ROLES, home_problem
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction
from infra.security.secrets_file import read_or_create
from infra.settings import Settings

SUPPORTED = ("HS256", "RS256", "EdDSA")
VERIFIED_TOKENS = 4096  # verified tokens remembered, least recently used forgotten first


class TokenError(ValueError):
    """A token that is missing, malformed, expired, or not ours; the message says which."""


def local_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.jwt_secret_file:
        path = Path(settings.jwt_secret_file)
        if not path.is_file():
            raise ValueError(f"LINKAGE_JWT_SECRET_FILE names {path}, which is not a file")
        return path.read_text().strip()
    if settings.keys_from_settings:
        raise ValueError("distributed mode needs the HS256 secret every process shares: set "
                         "LINKAGE_JWT_SECRET, or LINKAGE_JWT_SECRET_FILE to a file holding it "
                         "(linkage up makes one; README \"Keys\")")
    path = settings.data_dir / "jwt_secret"
    return read_or_create(path, lambda: secrets.token_urlsafe(48).encode()).decode().strip()


class Tokens:
    def __init__(self, settings: Settings, jurisdiction: Jurisdiction | None = None) -> None:
        self.jurisdiction = jurisdiction
        unknown = [a for a in settings.jwt_algorithms if a not in SUPPORTED]
        if unknown or not settings.jwt_algorithms:
            raise ValueError(
                f"LINKAGE_JWT_ALGORITHMS must name some of {', '.join(SUPPORTED)}; "
                f"got {','.join(settings.jwt_algorithms) or 'nothing'}"
            )
        self.algorithms = tuple(settings.jwt_algorithms)
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.ttl = settings.token_ttl
        self._verified = lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)
        self.keys: dict[str, Any] = {}
        self.secret: str | None = None
        if "HS256" in self.algorithms:
            self.secret = self.keys["HS256"] = local_secret(settings)
            if len(self.secret) < 32:
                raise ValueError("LINKAGE_JWT_SECRET must be at least 32 characters; "
                                 f"got {len(self.secret)} (leave it empty to generate one)")
        for alg, path in (("RS256", settings.jwt_rs256_public_key),
                          ("EdDSA", settings.jwt_eddsa_public_key)):
            if alg in self.algorithms:
                if not path:
                    raise ValueError(f"{alg} is pinned but no public key is configured "
                                     f"(LINKAGE_JWT_{alg.upper()}_PUBLIC_KEY, a PEM file)")
                self.keys[alg] = Path(path).read_bytes()

    def issue(self, user: str, role: str, center: str | None, *, department: str | None = None,
              ttl: int | None = None) -> str:
        """A locally signed HS256 token (for development and the demo)."""
        if self.secret is None:
            raise ValueError("local tokens need HS256 among LINKAGE_JWT_ALGORITHMS")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        if self.jurisdiction is not None:
            misplaced = home_problem(role, center, self.jurisdiction)
            if misplaced is not None:
                raise ValueError(misplaced)
        now = int(time.time())
        claims: dict[str, Any] = {"sub": user, "role": role, "center": center, "iat": now,
                                  "exp": now + (self.ttl if ttl is None else ttl),
                                  "aud": self.audience, "iss": self.issuer}
        if department:
            claims["department"] = department
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenError(f"token algorithm {alg!r} is not accepted; "
                             f"expected one of {', '.join(self.algorithms)}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.keys[alg], algorithms=[alg], audience=self.audience,
                issuer=self.issuer, options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired; get a new one") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {exc}") from None
        return claims

    def verify(self, token: str) -> tuple[Actor, int]:
        """The actor a valid token names, and its expiry (epoch seconds).

        A token's verdict depends on nothing but the token, the keys and the tree, all fixed
        for this object's life, except its expiry: verified tokens are remembered (a bounded
        LRU: a console or client sends the same token with every request) and checked against
        the clock each time. Refusals are not remembered."""
        actor, expires = self._verified(token)
        if expires <= time.time():  # as PyJWT decides, with no leeway
            raise TokenError("token expired; get a new one")
        return actor.copy(), expires  # the caller may change its copy

    def _verify(self, token: str) -> tuple[Actor, int]:
        claims = self.claims(token)
        role, center, user = claims.get("role"), claims.get("center"), claims.get("sub")
        if role not in ROLES:
            raise TokenError(f"token role must be one of {', '.join(ROLES)}; got {role!r}")
        if not isinstance(user, str) or not user:
            raise TokenError("token subject (sub) must be a user id")
        if center is not None and not isinstance(center, str):
            raise TokenError("token center must be a center id or null")
        if self.jurisdiction is not None:
            misplaced = home_problem(role, center, self.jurisdiction)
            if misplaced is not None:
                raise TokenError(f"token refused: {misplaced}")
        actor: Actor = {"user": user, "role": role, "center": center}
        department = claims.get("department")
        if isinstance(department, str) and department:
            actor["department"] = department
        return actor, int(claims["exp"])
