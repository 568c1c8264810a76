"""Cache values to bytes and back: msgpack for the allowed types, zstd above a threshold.

Nothing is pickled (DESIGN.md invariant 8). Allowed: None, bool, int (64-bit), float, str,
bytes, and lists/tuples and dicts (str keys) of these. Anything else is refused with
:class:`~tenantry.errors.InvalidInput` before it reaches the cache.

Layout: one header byte (``0x00`` raw msgpack, ``0x01`` zstd-compressed msgpack), then the body.
"""

from __future__ import annotations

from typing import Any

import msgpack
import zstandard

from tenantry.errors import InvalidInput

__all__ = ["Codec"]

_RAW = b"\x00"
_ZSTD = b"\x01"


class Codec:
    """Encode and decode cache values; compress bodies of ``compress_threshold`` bytes or more.

    Keeps one msgpack ``Packer`` (``packb`` builds one per call, ~1 us of a set): use a codec
    from one thread, as the cache manager does (its event loop's).
    """

    def __init__(self, compress_threshold: int = 1024, level: int = 3) -> None:
        self.compress_threshold = compress_threshold
        self._pack = msgpack.Packer(use_bin_type=True, strict_types=False).pack  # resets on error
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._decompressor = zstandard.ZstdDecompressor()

    def encode(self, value: Any) -> bytes:
        body = self._body(value)
        if len(body) >= self.compress_threshold:
            compressed = self._compressor.compress(body)
            if len(compressed) < len(body):
                return _ZSTD + compressed
        return _RAW + body

    def size(self, value: Any) -> int:
        """``len(self.encode(value))``, without building the encoded value when it is small (nor
        packing an ASCII string: its size is its length and msgpack's header's)."""
        if type(value) is str and value.isascii():  # msgpack's str: a header, then the bytes
            n = len(value)
            size = n + (1 if n < 32 else 2 if n < 256 else 3 if n < 65536 else 5)
            if size < self.compress_threshold:
                return size + 1  # the header byte
            return len(self.encode(value))
        try:  # _body, inline: this runs on every set
            size = len(self._pack(value))
        except (TypeError, ValueError, OverflowError):
            self._body(value)  # raises InvalidInput (the packer reset itself)
            raise
        if size >= self.compress_threshold:
            return len(self.encode(value))
        return size + 1  # the header byte

    def _body(self, value: Any) -> bytes:
        try:
            body: bytes = self._pack(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(
                f"cannot cache a {type(value).__name__}: use None, bool, int, float, str, bytes, "
                f"lists and dicts of them ({exc})"
            ) from None
        return body

    def decode(self, data: bytes) -> Any:
        header, body = data[:1], data[1:]
        if header == _ZSTD:
            body = self._decompressor.decompress(body)
        elif header != _RAW:
            raise InvalidInput("not a tenantry cache value")
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
