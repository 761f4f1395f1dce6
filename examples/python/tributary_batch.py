"""Tributary record batches (Kafka's v2 record batch with a CRC-32 IEEE checksum) in pure Python.

Everything here follows docs/record-format.md; the section numbers below point into it. Only
the standard library is used: struct for the big-endian header, zlib.crc32 for the checksum.

    batch = encode_batch([Record(key=b"k", value=b"v", headers=[("h", b"1")], timestamp_ms=t)])
    for decoded in decode_batches(fetched_bytes):
        for record in decoded.records: ...

Run this file to check the encoder against the golden vectors the Rust codec is pinned to.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

# §2: base offset, batch length, partition leader epoch, magic, CRC, attributes, last offset
# delta, first timestamp, max timestamp, producer id, producer epoch, base sequence, records count.
HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # base offset + batch length: the bytes batch_length does not count
CRC_START = 21  # the CRC covers bytes [21, end): attributes onwards
MAGIC = 2
COMPRESSION_MASK = 0x07  # attributes bits 0-2 (§3)
LOG_APPEND_TIME_FLAG = 0x08  # attributes bit 3


class BatchError(ValueError):
    """Bytes that are not a valid batch; the message says which check failed."""


@dataclass
class Record:
    """One record. `offset` is set when decoding; a producer leaves it None."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_ms: int = 0
    offset: int | None = None


@dataclass
class Batch:
    """A decoded batch: its header fields and records (with absolute offsets and timestamps)."""

    base_offset: int
    partition_leader_epoch: int
    attributes: int
    records: list[Record]


# §4: zig-zag, then base-128 with the least significant group first.
def encode_varint(n: int) -> bytes:
    """The zig-zag varint (protobuf sint64) encoding of a signed integer."""
    u = ((n << 1) ^ (n >> 63)) & 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def decode_varint(buf: bytes, pos: int, max_bytes: int = 10) -> tuple[int, int]:
    """Reads a zig-zag varint at `pos`; returns (value, position after it)."""
    u = 0
    for i in range(max_bytes):
        if pos + i >= len(buf):
            raise BatchError(f"truncated varint at byte {pos}")
        byte = buf[pos + i]
        u |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return (u >> 1) ^ -(u & 1), pos + i + 1
    raise BatchError(f"varint too long at byte {pos}")


def _nullable(data: bytes | None) -> bytes:
    """A length-prefixed byte string; null is length -1 (§1)."""
    if data is None:
        return encode_varint(-1)
    return encode_varint(len(data)) + data


def _encode_record(record: Record, offset_delta: int, first_timestamp: int) -> bytes:
    """One record (§5): its length varint, then attributes, deltas, key, value, headers."""
    body = bytearray(b"\x00")  # record attributes, unused
    body += encode_varint(record.timestamp_ms - first_timestamp)
    body += encode_varint(offset_delta)
    body += _nullable(record.key)
    body += _nullable(record.value)
    body += encode_varint(len(record.headers))
    for header_key, header_value in record.headers:
        body += _nullable(header_key.encode("utf-8"))
        body += _nullable(header_value)
    return encode_varint(len(body)) + bytes(body)


def encode_batch(records: list[Record]) -> bytes:
    """An uncompressed batch as a producer sends it: base offset 0 and leader epoch -1 (the
    leader overwrites both, §6), no producer id, CreateTime timestamps."""
    if not records:
        raise ValueError("a produced batch needs at least one record")
    first_timestamp = records[0].timestamp_ms
    max_timestamp = max(r.timestamp_ms for r in records)
    body = b"".join(_encode_record(r, i, first_timestamp) for i, r in enumerate(records))
    header = bytearray(
        HEADER.pack(
            0,  # base offset: assigned by the leader
            HEADER_SIZE - LOG_OVERHEAD + len(body),  # batch length
            -1,  # partition leader epoch: stamped by the leader
            MAGIC,
            0,  # CRC, filled in below
            0,  # attributes: no compression, CreateTime
            len(records) - 1,  # last offset delta
            first_timestamp,
            max_timestamp,
            -1,  # producer id
            -1,  # producer epoch
            -1,  # base sequence
            len(records),
        )
    )
    crc = zlib.crc32(bytes(header[CRC_START:]) + body)  # CRC-32 IEEE, not Kafka's CRC-32C (§7)
    struct.pack_into(">I", header, 17, crc)
    return bytes(header) + body


def decode_batch(batch: bytes) -> Batch:
    """Checks and decodes exactly one batch (§9): magic, length, CRC, records."""
    if len(batch) < HEADER_SIZE:
        raise BatchError(f"{len(batch)} bytes is shorter than a batch header ({HEADER_SIZE})")
    (base_offset, batch_length, leader_epoch, magic, crc, attributes, last_offset_delta,
     first_timestamp, max_timestamp, _producer_id, _producer_epoch, _base_sequence,
     count) = HEADER.unpack_from(batch)
    if magic != MAGIC:
        raise BatchError(f"magic {magic}, expected {MAGIC}")
    if batch_length + LOG_OVERHEAD != len(batch):
        raise BatchError(f"batch_length {batch_length} does not match {len(batch)} bytes")
    if zlib.crc32(batch[CRC_START:]) != crc:
        raise BatchError(f"CRC mismatch in the batch at offset {base_offset}")
    if attributes & COMPRESSION_MASK:
        raise BatchError(f"compressed batch (codec {attributes & COMPRESSION_MASK})")
    log_append_time = attributes & LOG_APPEND_TIME_FLAG
    records = []
    pos = HEADER_SIZE
    for i in range(count):
        length, pos = decode_varint(batch, pos, max_bytes=5)
        end = pos + length
        if length < 6 or end > len(batch):
            raise BatchError(f"record {i} has a bad length {length}")
        pos += 1  # record attributes
        timestamp_delta, pos = decode_varint(batch, pos)
        offset_delta, pos = decode_varint(batch, pos, max_bytes=5)
        if offset_delta != i:
            raise BatchError(f"record {i} has offset delta {offset_delta}")
        key, pos = _read_nullable(batch, pos)
        value, pos = _read_nullable(batch, pos)
        header_count, pos = decode_varint(batch, pos, max_bytes=5)
        headers = []
        for _ in range(header_count):
            header_key, pos = _read_nullable(batch, pos)
            if header_key is None:
                raise BatchError(f"record {i} has a null header key")
            header_value, pos = _read_nullable(batch, pos)
            headers.append((header_key.decode("utf-8"), header_value))
        if pos != end:
            raise BatchError(f"record {i} does not fill its {length} bytes")
        timestamp = max_timestamp if log_append_time else first_timestamp + timestamp_delta
        records.append(Record(key, value, headers, timestamp, base_offset + offset_delta))
    if pos != len(batch) or last_offset_delta != count - 1:
        raise BatchError(f"the batch at offset {base_offset} does not hold exactly {count} records")
    return Batch(base_offset, leader_epoch, attributes, records)


def _read_nullable(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buf, pos, max_bytes=5)
    if length == -1:
        return None, pos
    if length < -1 or pos + length > len(buf):
        raise BatchError(f"bad length {length} at byte {pos}")
    return bytes(buf[pos:pos + length]), pos + length


def decode_batches(buffer: bytes) -> list[Batch]:
    """Every complete batch of a fetched buffer, in order. A trailing partial batch (normal at
    the end of a size-limited fetch) is left out."""
    batches = []
    pos = 0
    while len(buffer) - pos >= LOG_OVERHEAD:
        (batch_length,) = struct.unpack_from(">i", buffer, pos + 8)
        end = pos + LOG_OVERHEAD + batch_length
        if end > len(buffer):
            break
        batches.append(decode_batch(buffer[pos:end]))
        pos = end
    return batches


def _self_test() -> None:
    """The golden vectors `hello` and `headers` of docs/record-format.md §8, byte for byte."""
    t = 1_700_000_000_000
    golden = {
        "hello": (
            [Record(None, b"hello", [], t)],
            "0000000000000000 0000003d ffffffff 02 2d9df4f9 0000 00000000 0000018bcfe56800"
            " 0000018bcfe56800 ffffffffffffffff ffff ffffffff 00000001"
            " 16 00 00 00 01 0a 68656c6c6f 00",
        ),
        "headers": (
            [Record(b"key", b"value", [("h1", b"v1"), ("h2", None)], t)],
            "0000000000000000 0000004a ffffffff 02 ebaa09c9 0000 00000000 0000018bcfe56800"
            " 0000018bcfe56800 ffffffffffffffff ffff ffffffff 00000001"
            " 30 00 00 00 06 6b6579 0a 76616c7565 04 04 6831 04 7631 04 6832 01",
        ),
    }
    for name, (records, expected_hex) in golden.items():
        encoded = encode_batch(records)
        assert encoded == bytes.fromhex(expected_hex), f"{name}: {encoded.hex()}"
        (decoded,) = decode_batches(encoded + encoded[:20])  # plus a partial batch, ignored
        for record in decoded.records:
            record.offset = None
        assert decoded.records == records, f"{name}: {decoded.records}"
    for n in (0, -1, 1, 63, -64, 64, 300, -1000, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)):
        assert decode_varint(encode_varint(n), 0) == (n, len(encode_varint(n))), n
    print("tributary_batch: golden vectors hello and headers match byte for byte")


if __name__ == "__main__":
    _self_test()
