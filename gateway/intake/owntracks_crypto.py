"""OwnTracks payload encryption: ``{"_type": "encrypted", "data": ...}`` opened with the
device's key.

The OwnTracks apps (Android ``EncryptionProvider``, iOS, and the Recorder) encrypt a message
with libsodium's ``crypto_secretbox`` (XSalsa20-Poly1305) under a key made from the
``encryptionKey`` setting as it is: its UTF-8 bytes copied into a 32-byte buffer of zeros
(longer secrets are cut at 32 bytes; no hashing, no KDF). ``data`` is the base64 of the 24-byte
nonce followed by the ciphertext. The plaintext is an ordinary OwnTracks JSON message.

Keys are configured per device (``hotspots owntracks key DEVICE``, table ``device_keys``). An
encrypted message is quarantined with a reason when it cannot be opened:

``no_key``          no key configured for the device
``bad_envelope``    not ``{"_type": "encrypted", "data": "<base64>"}``, or shorter than a nonce
``decrypt_failed``  the key does not open it (wrong key, or a damaged message)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time

import sqlite_utils
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

KEY_BYTES = SecretBox.KEY_SIZE  # 32
NONCE_BYTES = SecretBox.NONCE_SIZE  # 24
#: An envelope holds a message of up to the wire format's limit: base64 of nonce + MAC + 4096.
MAX_ENVELOPE = 8192


class SealedError(ValueError):
    """An encrypted message that cannot be opened; ``reason`` is one of the module's reasons."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def key_bytes(secret: str) -> bytes:
    """The 32-byte secretbox key the OwnTracks apps make from an ``encryptionKey``."""
    raw = secret.encode("utf-8")
    if not raw:
        raise ValueError("an empty encryption key turns encryption off in the apps")
    return raw[:KEY_BYTES].ljust(KEY_BYTES, b"\0")


def is_encrypted(payload: bytes) -> bool:
    """Whether ``payload`` looks like an encrypted envelope (cheap, before any JSON parsing)."""
    head = bytes(payload[:64])
    return b'"encrypted"' in head or b'"encrypted"' in bytes(payload[-64:])


def seal(plaintext: bytes, secret: str, nonce: bytes | None = None) -> bytes:
    """An envelope as the apps publish it (tests, simulators)."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    box = SecretBox(key_bytes(secret))
    sealed = box.encrypt(plaintext, nonce)  # nonce + ciphertext, as the apps lay it out
    return json.dumps({"_type": "encrypted",
                       "data": base64.b64encode(bytes(sealed)).decode()}).encode()


def open_envelope(payload: bytes, secret: str | None) -> bytes:
    """The plaintext inside an envelope.

    :raises SealedError: ``no_key``, ``bad_envelope`` or ``decrypt_failed``
    """
    if len(payload) > MAX_ENVELOPE:
        raise SealedError("bad_envelope", f"{len(payload)} bytes, more than {MAX_ENVELOPE}")
    try:
        envelope = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise SealedError("bad_envelope", f"not JSON: {exc}"[:200]) from None
    if not isinstance(envelope, dict) or envelope.get("_type") != "encrypted" or not isinstance(
            envelope.get("data"), str):
        raise SealedError("bad_envelope", 'expected {"_type": "encrypted", "data": "..."}')
    if secret is None:
        raise SealedError("no_key", "no encryption key is configured for this device"
                          " (hotspots owntracks key)")
    try:
        raw = base64.b64decode(envelope["data"], validate=True)
    except (binascii.Error, ValueError):
        raise SealedError("bad_envelope", "data is not base64") from None
    if len(raw) <= NONCE_BYTES + SecretBox.MACBYTES:
        raise SealedError("bad_envelope", f"{len(raw)} bytes: shorter than nonce and MAC")
    try:
        return bytes(SecretBox(key_bytes(secret)).decrypt(raw[NONCE_BYTES:],
                                                          raw[:NONCE_BYTES]))
    except CryptoError:
        raise SealedError("decrypt_failed", "the configured key does not open it (wrong key"
                          " on the phone or here, or a damaged message)") from None


# -- keys -----------------------------------------------------------------------------------------
def set_key(db: sqlite_utils.Database, device_id: str, secret: str) -> None:
    """Configure (or replace) the ``encryptionKey`` of ``device_id``."""
    key_bytes(secret)  # refuses an empty secret
    with db.conn:
        db.execute("INSERT INTO device_keys (device_id, secret, set_at) VALUES (?, ?, ?)"
                   " ON CONFLICT(device_id) DO UPDATE SET secret = excluded.secret,"
                   " set_at = excluded.set_at", (device_id, secret, int(time.time())))


def remove_key(db: sqlite_utils.Database, device_id: str) -> bool:
    """Forget the device's key; False if it had none."""
    with db.conn:
        return db.execute("DELETE FROM device_keys WHERE device_id = ?",
                          (device_id,)).rowcount == 1


def get_key(db: sqlite_utils.Database | object, device_id: str) -> str | None:
    """The device's configured secret, or None. Takes a database or a sqlite3 connection."""
    row = db.execute("SELECT secret FROM device_keys WHERE device_id = ?",
                     (device_id,)).fetchone()
    return row[0] if row else None
