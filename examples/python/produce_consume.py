#!/usr/bin/env python3
"""Produce and consume with Tributary from Python, using nothing but the .proto files.

    python3 examples/python/produce_consume.py --bootstrap 127.0.0.1:9092

1. generates the gRPC stubs from proto/proto/tributary/v1/tributary.proto (stubs.py);
2. creates a topic (Admin.CreateTopics; any broker answers);
3. finds each partition's leader (Broker.Metadata);
4. encodes JSON records with keys and headers into v2 record batches itself
   (tributary_batch.py) and sends each batch to its partition's leader (Broker.Produce);
5. fetches them back as raw batches (Broker.Fetch), checks every CRC, decodes them and checks
   that every record came back unchanged, at the offset Produce reported;
6. checks the broker refuses a batch with one flipped byte (CORRUPT_MESSAGE), then asks it to
   decode one partition (RECORD_FORMAT_DECODED) and checks its records agree.

Exits 0 and prints "OK: ..." last when everything matched; exits 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import grpc

import stubs
from tributary_batch import Record, decode_batches, encode_batch

# gRPC's default 4 MiB receive limit is below a fetch's default max_bytes (50 MiB).
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20)]


class ExampleError(Exception):
    """A step failed; the message says which and why."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="any broker, host:port")
    parser.add_argument("--topic", default="python-example")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--count", type=int, default=12, help="records to produce")
    parser.add_argument("--proto-dir", type=Path, default=stubs.DEFAULT_PROTO_ROOT,
                        help="the directory holding tributary/v1/tributary.proto")
    args = parser.parse_args()
    try:
        run(args)
    except (ExampleError, stubs.StubError) as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"FAILED: gRPC {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> None:
    modules = stubs.load(["tributary/v1/tributary.proto"], [args.proto_dir])
    pb = modules["tributary.v1.tributary_pb2"]
    rpc = modules["tributary.v1.tributary_pb2_grpc"]
    print(f"generated stubs from {args.proto_dir / 'tributary/v1/tributary.proto'}")

    channels = Channels()
    bootstrap = channels.get(args.bootstrap)
    create_topic(pb, rpc.AdminStub(bootstrap), args.topic, args.partitions)
    leaders = wait_for_leaders(pb, rpc.BrokerStub(bootstrap), args.topic)
    print("leaders: " + ", ".join(
        f"partition {p} -> broker {b.broker_id} at {b.address} (epoch {b.epoch})"
        for p, b in sorted(leaders.items())))

    sent = make_records(args.count)
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for record in sent:
        # Not Kafka's murmur2 partitioner: any stable function of the key will do here.
        by_partition[zlib.crc32(record.key) % len(leaders)].append(record)

    base_offsets = {}
    for partition, records in sorted(by_partition.items()):
        leader = leaders[partition]
        base_offsets[partition] = produce(
            pb, rpc.BrokerStub(channels.get(leader.address)), args.topic, partition, records)
        print(f"produced {len(records)} records to partition {partition} "
              f"at offsets {base_offsets[partition]}..{base_offsets[partition] + len(records) - 1}")

    for partition, records in sorted(by_partition.items()):
        leader = leaders[partition]
        broker = rpc.BrokerStub(channels.get(leader.address))
        fetched = fetch_raw(pb, broker, args.topic, partition, leader.epoch,
                            base_offsets[partition], len(records))
        check_same(partition, records, fetched, base_offsets[partition])
        print(f"fetched partition {partition}: {len(fetched)} records, CRCs valid, identical")

    partition, records = sorted(by_partition.items())[0]
    leader = leaders[partition]
    refuse_corrupt_batch(pb, rpc.BrokerStub(channels.get(leader.address)), args.topic,
                         partition, records)
    decoded = fetch_decoded(pb, rpc.BrokerStub(channels.get(leader.address)), args.topic,
                            partition, base_offsets[partition], len(records))
    check_same(partition, records, decoded, base_offsets[partition])
    print(f"the broker's decoding of partition {partition} agrees")

    first = sent[0]
    print(f"e.g. key={first.key.decode()} headers={[(k, v and v.decode()) for k, v in first.headers]}"
          f" value={first.value.decode()}")
    print(f"OK: {len(sent)} records produced to {len(by_partition)} partitions of "
          f"{args.topic!r} as v2 batches and read back identical")


class Channels:
    """One channel per broker address, reused."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.Channel] = {}

    def get(self, address: str) -> grpc.Channel:
        if address not in self._channels:
            self._channels[address] = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        return self._channels[address]


class Leader:
    def __init__(self, broker_id: int, address: str, epoch: int) -> None:
        self.broker_id, self.address, self.epoch = broker_id, address, epoch


def create_topic(pb, admin, topic: str, partitions: int) -> None:
    response = admin.CreateTopics(pb.CreateTopicsRequest(
        topics=[pb.NewTopic(name=topic, num_partitions=partitions)]), timeout=60)
    result = response.results[0]
    if result.error_code == pb.ERROR_CODE_TOPIC_ALREADY_EXISTS:
        print(f"topic {topic!r} already exists; appending to it")
    elif result.error_code != pb.ERROR_CODE_NONE:
        raise ExampleError(f"CreateTopics {topic}: {error_name(pb, result)}")
    else:
        print(f"created topic {topic!r} with {result.num_partitions} partitions "
              f"(replication factor {result.replication_factor})")


def wait_for_leaders(pb, broker, topic: str, timeout_s: float = 30) -> dict[int, Leader]:
    """Every partition's leader, from Metadata; retried while a partition has none yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = broker.Metadata(pb.MetadataRequest(topics=[topic]), timeout=10)
        addresses = {b.id: f"{b.host}:{b.port}" for b in metadata.brokers}
        (topic_metadata,) = metadata.topics
        leaders = {
            p.partition: Leader(p.leader, addresses[p.leader], p.leader_epoch)
            for p in topic_metadata.partitions
            if p.error_code == pb.ERROR_CODE_NONE and p.leader in addresses
        }
        if topic_metadata.error_code == pb.ERROR_CODE_NONE and topic_metadata.partitions \
                and len(leaders) == len(topic_metadata.partitions):
            return leaders
        if time.monotonic() > deadline:
            raise ExampleError(f"{topic}: not every partition has a leader after {timeout_s} s")
        time.sleep(0.2)


def make_records(count: int) -> list[Record]:
    """JSON order events keyed by customer, with headers (one of them null)."""
    now_ms = int(time.time() * 1000)
    records = []
    for i in range(count):
        customer = f"customer-{i % 4}"
        value = {"order_id": i, "customer": customer, "amount_cents": 250 * (i + 1),
                 "items": ["tea"] * (i % 3 + 1)}
        headers = [("content-type", b"application/json"), ("source", b"python-example")]
        if i % 5 == 0:
            headers.append(("trace-id", None))  # a null header value round-trips as null
        records.append(Record(key=customer.encode(), value=json.dumps(value).encode(),
                              headers=headers, timestamp_ms=now_ms + i))
    return records


def produce(pb, broker, topic: str, partition: int, records: list[Record]) -> int:
    """Sends one batch to the partition's leader with acks=-1; returns its base offset."""
    request = pb.ProduceRequest(
        request_id=partition, acks=-1, timeout_ms=10_000,
        topics=[pb.TopicProduceData(topic=topic, partitions=[
            pb.PartitionProduceData(partition=partition, batches=encode_batch(records))])])
    result = broker.Produce(request, timeout=30).topics[0].partitions[0]
    if result.error_code != pb.ERROR_CODE_NONE:
        raise ExampleError(f"Produce {topic}-{partition}: {error_name(pb, result)}")
    if result.last_offset - result.base_offset + 1 != len(records):
        raise ExampleError(f"Produce {topic}-{partition}: offsets {result.base_offset}.."
                           f"{result.last_offset} for {len(records)} records")
    return result.base_offset


def refuse_corrupt_batch(pb, broker, topic: str, partition: int, records: list[Record]) -> None:
    """The broker checks the CRC: the same batch with one value byte flipped is refused."""
    batch = bytearray(encode_batch(records))
    batch[-2] ^= 0x01
    request = pb.ProduceRequest(acks=1, topics=[pb.TopicProduceData(topic=topic, partitions=[
        pb.PartitionProduceData(partition=partition, batches=bytes(batch))])])
    result = broker.Produce(request, timeout=30).topics[0].partitions[0]
    if result.error_code != pb.ERROR_CODE_CORRUPT_MESSAGE:
        raise ExampleError(f"a corrupted batch got {error_name(pb, result)}")
    print(f"a batch with one flipped byte is refused: {error_name(pb, result)}")


def fetch_raw(pb, broker, topic, partition, leader_epoch, offset, count) -> list[Record]:
    """Reads `count` records from `offset` as raw batches, decoding and CRC-checking them."""
    records: list[Record] = []
    next_offset = offset
    deadline = time.monotonic() + 30
    while len(records) < count:
        request = pb.FetchRequest(
            request_id=partition, replica_id=-1, max_wait_ms=500, format=pb.RECORD_FORMAT_RAW,
            topics=[pb.TopicFetchData(topic=topic, partitions=[pb.FetchPartition(
                partition=partition, fetch_offset=next_offset, current_leader_epoch=leader_epoch)])])
        result = broker.Fetch(request, timeout=30).topics[0].partitions[0]
        if result.error_code != pb.ERROR_CODE_NONE:
            raise ExampleError(f"Fetch {topic}-{partition}: {error_name(pb, result)}")
        for batch in decode_batches(result.batches):
            # A batch may start before the offset asked for: skip what was already read.
            records.extend(r for r in batch.records if r.offset >= next_offset)
        if records:
            next_offset = records[-1].offset + 1
        if time.monotonic() > deadline:
            raise ExampleError(f"Fetch {topic}-{partition}: {len(records)} of {count} records")
    return records[:count]


def fetch_decoded(pb, broker, topic, partition, offset, count) -> list[Record]:
    """The same records, decoded by the broker (for clients without a batch decoder)."""
    request = pb.FetchRequest(
        replica_id=-1, max_wait_ms=500, format=pb.RECORD_FORMAT_DECODED,
        topics=[pb.TopicFetchData(topic=topic, partitions=[pb.FetchPartition(
            partition=partition, fetch_offset=offset, current_leader_epoch=-1)])])
    result = broker.Fetch(request, timeout=30).topics[0].partitions[0]
    if result.error_code != pb.ERROR_CODE_NONE:
        raise ExampleError(f"Fetch {topic}-{partition}: {error_name(pb, result)}")
    return [
        Record(key=r.key if r.HasField("key") else None,
               value=r.value if r.HasField("value") else None,
               headers=[(h.key, h.value if h.HasField("value") else None) for h in r.headers],
               timestamp_ms=r.timestamp_ms, offset=r.offset)
        for r in result.records[:count]
    ]


def check_same(partition: int, sent: list[Record], received: list[Record], base: int) -> None:
    if len(received) != len(sent):
        raise ExampleError(f"partition {partition}: sent {len(sent)}, got {len(received)}")
    for i, (want, got) in enumerate(zip(sent, received)):
        if got.offset != base + i:
            raise ExampleError(f"partition {partition}: record {i} at offset {got.offset}, "
                               f"expected {base + i}")
        if (got.key, got.value, got.headers, got.timestamp_ms) != \
                (want.key, want.value, want.headers, want.timestamp_ms):
            raise ExampleError(f"partition {partition} offset {got.offset}: got {got}, "
                               f"sent {want}")
        json.loads(got.value)  # still valid JSON


def error_name(pb, result) -> str:
    return f"{pb.ErrorCode.Name(result.error_code)}: {result.error_message}"


if __name__ == "__main__":
    sys.exit(main())
