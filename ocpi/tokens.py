"""Credentials tokens at rest (DESIGN.md "Tokens at rest").

Tokens partners present to us are only compared: we keep a SHA-256 digest (they are random and
long, so a fast digest is safe) and look them up by it. Tokens we present to partners must be
recoverable: they are encrypted with Fernet under OCPI_TOKEN_ENCRYPTION_KEY (or a key derived
from SECRET_KEY), so a database dump alone lets nobody call us or a partner.
"""

import base64
import binascii
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def new_token() -> str:
    """A fresh credentials token: 43 URL-safe characters, within OCPI's 64-char printable ASCII.

    Never starting with "-", so it can be passed to a command-line option as it is."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digests_match(stored_digest: str, token: str) -> bool:
    return hmac.compare_digest(stored_digest, token_digest(token))


def candidate_tokens(header_value: str) -> list[str]:
    """What an `Authorization: Token <value>` may carry: 2.2.1 Base64 or the raw token."""
    candidates = [header_value]
    try:
        decoded = base64.b64decode(header_value, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return candidates
    if decoded and decoded != header_value:
        candidates.insert(0, decoded)
    return candidates


def encode_for_header(token: str, *, base64_encoded: bool) -> str:
    if base64_encoded:
        return base64.b64encode(token.encode()).decode()
    return token


def _fernet() -> Fernet:
    secret = settings.OCPI_TOKEN_ENCRYPTION_KEY or settings.SECRET_KEY
    key = base64.urlsafe_b64encode(hashlib.sha256(f"ocpi-token:{secret}".encode()).digest())
    return Fernet(key)


def encrypt(token: str) -> str:
    return _fernet().encrypt(token.encode()).decode()


def decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("The stored partner token cannot be decrypted with this key.") from exc
