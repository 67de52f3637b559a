"""API keys: creation, HMAC-SHA256 hashing with a server secret, verification, revocation.

A key reads ``amk_<key id: 16 hex>.<secret>``; it is shown once at creation and only
``HMAC-SHA256(server secret, key)`` is stored. Roles bound the scopes a key may carry.
"""

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from aimesh.config import Settings
from aimesh.errors import InvalidInputError
from aimesh.store.tables import ApiKey, utcnow

Role = Literal["user", "service", "admin"]
KeyScope = Literal["read", "write", "create", "delete", "admin"]
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "user": frozenset({"read", "write", "create"}),
    "service": frozenset({"read", "write", "create", "delete"}),
    "admin": frozenset(get_args(KeyScope)),
}
"""The scopes each role may hold; a new key gets all of them unless fewer are asked for."""

KEY_FORMAT = re.compile(r"^amk_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def server_secret(settings: Settings) -> bytes:
    """The HMAC secret: ``AIMESH_KEY_SECRET``, else a random one kept in the data directory.

    The file ``key_secret`` is created once (mode 0600) so that the CLI and every API
    process hash keys alike.
    """
    if settings.key_secret is not None:
        return settings.key_secret.get_secret_value().encode()
    path: Path = settings.home_dir / "key_secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return path.read_bytes()


def hash_key(secret: bytes, api_key: str) -> str:
    """HMAC-SHA256 of the whole key under the server secret, as 64 hex digits."""
    return hmac.new(secret, api_key.encode(), hashlib.sha256).hexdigest()


def parse_key(api_key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    match = KEY_FORMAT.match(api_key)
    return match.group(1) if match else None


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: the only time the secret ``api_key`` is available."""

    record: ApiKey
    api_key: str


def check_scopes(role: str, scopes: list[str] | None) -> list[str]:
    """The scopes a new key gets: ``scopes`` if the role allows them all, else an error.

    Raises:
        InvalidInputError: A scope is outside the role's (field ``scopes``).
    """
    allowed = ROLE_SCOPES[role]
    if scopes is None:
        return sorted(allowed)
    extra = sorted(set(scopes) - allowed)
    if extra:
        raise InvalidInputError(
            "scopes", f"role {role!r} cannot hold {extra}", f"a subset of {sorted(allowed)}"
        )
    return sorted(set(scopes))


async def create_key(
    session: AsyncSession,
    secret: bytes,
    *,
    tenant: str,
    user_id: str,
    role: Role,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    name: str | None = None,
    created_by: str | None = None,
) -> NewKey:
    """Create and store a key (the caller commits); returns it with its one-time secret.

    Raises:
        InvalidInputError: Bad tenant, role, scopes or an expiry in the past.
    """
    if not re.match(TENANT_PATTERN, tenant):
        raise InvalidInputError("tenant", f"{tenant!r} is malformed", TENANT_PATTERN)
    if role not in ROLE_SCOPES:
        raise InvalidInputError("role", f"unknown role {role!r}", "user, service or admin")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInputError("expires_at", "is in the past", "a future time")
    key_id = secrets.token_hex(8)
    api_key = f"amk_{key_id}.{secrets.token_urlsafe(32)}"
    record = ApiKey(
        id=key_id,
        tenant=tenant,
        user_id=user_id,
        role=role,
        scopes=check_scopes(role, scopes),
        secret_hash=hash_key(secret, api_key),
        name=name,
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(record)
    return NewKey(record, api_key)


async def verify_key(session: AsyncSession, secret: bytes, api_key: str) -> ApiKey | None:
    """The live key record ``api_key`` belongs to, or None (unknown, wrong, revoked, expired).

    The stored hash is compared in constant time.
    """
    key_id = parse_key(api_key)
    record = await session.get(ApiKey, key_id) if key_id else None
    if record is None or not hmac.compare_digest(record.secret_hash, hash_key(secret, api_key)):
        return None
    if record.revoked_at is not None:
        return None
    if record.expires_at is not None and record.expires_at <= utcnow():
        return None
    return record
