"""Encrypted columns: seal a value for one (table, column, record) of a tenant, and open it.

A SQLAlchemy ``TypeDecorator`` cannot do this (a bind parameter knows neither the tenant nor the
record), so a repository calls a field explicitly::

    NOTES = json_field(keyring, "artist_notes", "body")

    async def add(self, note_id: str, body: dict[str, object]) -> None:
        blob = await NOTES.encrypt(self.tenant_id, note_id, body)   # bytea column
        await self.conn.execute(insert(artist_notes).values(id=note_id, body=blob, ...))

    async def get(self, note_id: str) -> dict[str, object]:
        row = ...
        return await NOTES.decrypt(self.tenant_id, note_id, row.body)

The purpose is ``"<table>.<column>"`` and the record id the row's primary key (join a composite
key with ``"/"``), so a value copied to another column, row or tenant does not decrypt. Once the
tenant is loaded (``await keyring.load(tenant)``), ``seal``/``open`` do the same without I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tenantry.errors import DecryptionError
from tenantry.keys.manager import Keyring

__all__ = ["EncryptedField", "bytes_field", "json_field", "text_field"]

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class EncryptedField(Generic[_V]):
    """One encrypted column: ``encode``/``decode`` turn values into bytes and back."""

    keyring: Keyring
    table: str
    column: str
    encode: Callable[[_V], bytes]
    decode: Callable[[bytes], _V]

    @property
    def purpose(self) -> str:
        return f"{self.table}.{self.column}"

    async def encrypt(self, tenant_id: str, record_id: str, value: _V) -> bytes:
        plaintext = self.encode(value)
        return await self.keyring.encrypt(
            tenant_id, plaintext, purpose=self.purpose, record_id=record_id
        )

    async def decrypt(self, tenant_id: str, record_id: str, ciphertext: bytes) -> _V:
        plaintext = await self.keyring.decrypt(
            tenant_id, ciphertext, purpose=self.purpose, record_id=record_id
        )
        return self._decode(plaintext)

    def seal(self, tenant_id: str, record_id: str, value: _V) -> bytes:
        return self.keyring.seal(tenant_id, self.encode(value), self.purpose, record_id)

    def open(self, tenant_id: str, record_id: str, ciphertext: bytes) -> _V:
        return self._decode(self.keyring.open(tenant_id, ciphertext, self.purpose, record_id))

    def _decode(self, plaintext: bytes) -> _V:
        try:
            return self.decode(plaintext)
        except ValueError as exc:  # authenticated, so only a changed codec gets here
            raise DecryptionError(f"{self.purpose}: the plaintext does not decode: {exc}") from None


def _json_encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_field(keyring: Keyring, table: str, column: str) -> EncryptedField[Any]:
    """A column holding an encrypted JSON value."""
    return EncryptedField(keyring, table, column, _json_encode, json.loads)


def text_field(keyring: Keyring, table: str, column: str) -> EncryptedField[str]:
    """A column holding encrypted text (UTF-8)."""
    return EncryptedField(keyring, table, column, str.encode, bytes.decode)


def bytes_field(keyring: Keyring, table: str, column: str) -> EncryptedField[bytes]:
    """A column holding encrypted bytes."""
    return EncryptedField(keyring, table, column, bytes, bytes)
