"""Password hashing (argon2id) and strength checking (zxcvbn, offline)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from fairtrain.errors import InvalidInput

__all__ = ["MIN_PASSWORD_LENGTH", "PasswordPolicy", "check_strength"]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256  # argon2 takes any length; a bound keeps hashing cost bounded
MIN_ZXCVBN_SCORE = 3


def check_strength(password: str, *, user_inputs: list[str]) -> None:
    """Refuse short, common and guessable passwords with a sentence saying why."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.",
            code="weak_password",
            pointer="/password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Passwords are limited to {MAX_PASSWORD_LENGTH} characters.",
            code="weak_password",
            pointer="/password",
        )
    result = zxcvbn(password, user_inputs=[u for u in user_inputs if u])
    if int(result["score"]) < MIN_ZXCVBN_SCORE:
        feedback = result.get("feedback", {})
        hint = feedback.get("warning") or "It is too easy to guess."
        raise InvalidInput(
            f"This password is too easy to guess: {hint.rstrip('.')}. "
            "Try a longer phrase of unrelated words.",
            code="weak_password",
            pointer="/password",
        )


class PasswordPolicy:
    """argon2id with costs from settings (tests use cheap ones, production the defaults)."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
