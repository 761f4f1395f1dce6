#!/usr/bin/env python3
"""A consumer-group member whose broker joins, fetches and commits for it (GroupConsumer.ConsumeStream).
Prints each record, commits after each Records message, leaves after --count records."""
import argparse, queue, grpc, stubs

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
for flag, default in (("--bootstrap", "127.0.0.1:9092"), ("--group", "python-group"), ("--topic", "python-example"), ("--count", 12)):
    parser.add_argument(flag, default=default, type=type(default))
args = parser.parse_args()
modules = stubs.load([f"tributary/v1/{n}.proto" for n in ("tributary", "group", "consume")], [stubs.DEFAULT_PROTO_ROOT])
pb, rpc = modules["tributary.v1.consume_pb2"], modules["tributary.v1.consume_pb2_grpc"]
error_name = modules["tributary.v1.tributary_pb2"].ErrorCode.Name

outbox = queue.Queue()  # what we send; None closes our side, and the broker leaves the group
outbox.put(pb.ConsumeClientMessage(subscribe=pb.ConsumeSubscribe(
    group_id=args.group, topics=[args.topic], initial_credit=10, auto_offset_reset=pb.CONSUME_OFFSET_RESET_EARLIEST)))
responses = rpc.GroupConsumerStub(grpc.insecure_channel(args.bootstrap)).ConsumeStream(iter(outbox.get, None))
seen = last_sequence = 0
for message in responses:
    kind = message.WhichOneof("message")
    if kind == "assignment":
        print(f"generation {message.assignment.generation_id}: "
              + ", ".join(f"{t.topic} {list(t.partitions)}" for t in message.assignment.assigned))
    elif kind == "records":
        batch, last_sequence = message.records, message.records.sequence
        for record in batch.records:
            print(f"{batch.topic}-{batch.partition}@{record.offset}: {record.value.decode()}")
        seen += len(batch.records)
        outbox.put(pb.ConsumeClientMessage(commit=pb.ConsumeCommit(through_sequence=batch.sequence)))  # processed
        outbox.put(pb.ConsumeClientMessage(credit=pb.ConsumeCredit(records=len(batch.records))))  # send more
    elif kind == "commit_result":
        result = message.commit_result
        print(f"commit: {error_name(result.error_code)} " + " ".join(f"{o.topic}-{o.partition}={o.offset}" for o in result.offsets))
        if seen >= args.count and result.through_sequence == last_sequence:
            break
outbox.put(None)
all(True for _ in responses)  # read until the broker ends the stream: the member has left
print(f"OK: {seen} records read and committed as group {args.group!r}")
