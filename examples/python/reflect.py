#!/usr/bin/env python3
"""Explore a Tributary broker's API through gRPC server reflection, without its .proto files.

    python3 examples/python/reflect.py 127.0.0.1:9092                      # list services
    python3 examples/python/reflect.py 127.0.0.1:9092 tributary.v1.Broker  # a service's RPCs
    python3 examples/python/reflect.py 127.0.0.1:9092 tributary.v1.FetchRequest  # a message

Prints services, RPCs, messages and enums with the doc comments the broker serves (the
descriptors carry the .proto comments). A small stand-in for `grpcurl list` / `grpcurl
describe`; only the reflection protocol's own messages (proto/server_reflection.proto) are
compiled here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2

import stubs

HERE = Path(__file__).resolve().parent
FIELD_TYPES = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in descriptor_pb2.FieldDescriptorProto.Type.items()
}
# Paths into FileDescriptorProto for source_code_info (descriptor.proto field numbers).
MESSAGE_TYPE, ENUM_TYPE, SERVICE = 4, 5, 6
MESSAGE_FIELD, ENUM_VALUE, SERVICE_METHOD = 2, 2, 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="a broker, host:port")
    parser.add_argument("symbol", nargs="?", help="a fully-qualified service, message or enum")
    args = parser.parse_args()
    modules = stubs.load(["server_reflection.proto"], [HERE / "proto"])
    pb = modules["server_reflection_pb2"]
    stub = modules["server_reflection_pb2_grpc"].ServerReflectionStub(
        grpc.insecure_channel(args.address))
    try:
        if args.symbol is None:
            response = ask(stub, pb.ServerReflectionRequest(list_services=""))
            for service in sorted(s.name for s in response.list_services_response.service):
                print(service)
        else:
            response = ask(stub, pb.ServerReflectionRequest(file_containing_symbol=args.symbol))
            if response.HasField("error_response"):
                print(f"{args.symbol}: {response.error_response.error_message}", file=sys.stderr)
                return 1
            files = [descriptor_pb2.FileDescriptorProto.FromString(raw) for raw in
                     response.file_descriptor_response.file_descriptor_proto]
            describe(files, args.symbol)
    except grpc.RpcError as error:
        print(f"gRPC {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    return 0


def ask(stub, request):
    """One request on the bidirectional reflection stream, and its one response."""
    return next(stub.ServerReflectionInfo(iter([request]), timeout=10))


def describe(files: list[descriptor_pb2.FileDescriptorProto], symbol: str) -> None:
    for file in files:
        comments = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        prefix = f"{file.package}." if file.package else ""
        for i, service in enumerate(file.service):
            if prefix + service.name == symbol:
                print_comment(comments.get((SERVICE, i)), "")
                print(f"service {symbol} {{  // {file.name}")
                for j, method in enumerate(service.method):
                    print_comment(comments.get((SERVICE, i, SERVICE_METHOD, j)), "  ")
                    client = "stream " if method.client_streaming else ""
                    server = "stream " if method.server_streaming else ""
                    print(f"  rpc {method.name}({client}{short(method.input_type)}) returns "
                          f"({server}{short(method.output_type)});")
                print("}")
                return
        for i, message in enumerate(file.message_type):
            if prefix + message.name == symbol:
                print_comment(comments.get((MESSAGE_TYPE, i)), "")
                print(f"message {symbol} {{  // {file.name}")
                for j, fld in enumerate(message.field):
                    print_comment(comments.get((MESSAGE_TYPE, i, MESSAGE_FIELD, j)), "  ")
                    print(f"  {field_label(fld)}{field_type(fld)} {fld.name} = {fld.number};")
                print("}")
                return
        for i, enum in enumerate(file.enum_type):
            if prefix + enum.name == symbol:
                print_comment(comments.get((ENUM_TYPE, i)), "")
                print(f"enum {symbol} {{  // {file.name}")
                for j, value in enumerate(enum.value):
                    print_comment(comments.get((ENUM_TYPE, i, ENUM_VALUE, j)), "  ")
                    print(f"  {value.name} = {value.number};")
                print("}")
                return
    print(f"{symbol}: not a top-level service, message or enum of the files served",
          file=sys.stderr)


def print_comment(text: str | None, indent: str) -> None:
    for line in (text or "").rstrip("\n").splitlines():
        print(f"{indent}//{line}")


def short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def field_label(fld: descriptor_pb2.FieldDescriptorProto) -> str:
    if fld.label == fld.LABEL_REPEATED:
        return "repeated "
    return "optional " if fld.proto3_optional else ""


def field_type(fld: descriptor_pb2.FieldDescriptorProto) -> str:
    if fld.type in (fld.TYPE_MESSAGE, fld.TYPE_ENUM):
        return short(fld.type_name)
    return FIELD_TYPES[fld.type]


if __name__ == "__main__":
    sys.exit(main())
