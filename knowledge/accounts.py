"""Password hashing (argon2id via argon2-cffi) and account field checks."""

from __future__ import annotations

import re
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from knowledge.models import ROLES
from knowledge.validation import ValidationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@\-]{2,64}$")


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """The shared argon2id hasher (library defaults: RFC 9106 low-memory profile)."""
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hasher().hash("tsunagu-dummy-password")


def hash_password(password: str) -> str:
    """Check the password rules and return an argon2id hash.

    Raises:
        ValidationError: too short or too long.
    """
    check_password(password)
    return hasher().hash(password)


def check_password(password: str) -> None:
    """Raise ValidationError when the password breaks the length rules."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            [("password", f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。")]
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            [("password", f"パスワードは{MAX_PASSWORD_LENGTH}文字以内にしてください。")]
        )


def verify(password_hash: str | None, password: str) -> bool:
    """Check a password against a hash; with no hash, spend the same time and return False."""
    try:
        return hasher().verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return hasher().check_needs_rehash(password_hash)


def check_account(name: str, role: str, office_id: str | None) -> None:
    """Validate account fields.

    Raises:
        ValidationError: bad name, unknown role or bad office id.
    """
    errors: list[tuple[str, str]] = []
    if not _NAME_RE.match(name):
        errors.append(("name", "ユーザー名は半角英数字と「_ . @ -」で2〜64文字にしてください。"))
    if role not in ROLES:
        errors.append(("role", "役割は admin・staff・counselor のどれかです。"))
    if office_id is not None and not re.match(r"^[A-Za-z0-9_.\-]{1,64}$", office_id):
        errors.append(("office_id", "事務所IDは半角英数字と「_ . -」で64文字以内にしてください。"))
    if errors:
        raise ValidationError(errors)
