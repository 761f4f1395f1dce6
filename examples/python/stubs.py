"""Generates Python gRPC stubs from .proto files at run time, into a temporary directory.

Two generators are tried, in this order:
  1. `protoc` with `grpc_python_plugin` (Debian: protobuf-compiler, protobuf-compiler-grpc;
     what deploy/install-deps.sh installs);
  2. `python3 -m grpc_tools.protoc` (PyPI: grpcio-tools).
Debian 12's python3-grpc-tools (1.14) is too old for proto3 `optional` fields; the first
generator is used there.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

# examples/python/ -> the repository's proto/proto/ (tributary/v1/tributary.proto).
DEFAULT_PROTO_ROOT = Path(__file__).resolve().parent.parent.parent / "proto" / "proto"


class StubError(RuntimeError):
    """No generator worked; the message says what was tried and how to install one."""


def _generators(include_dirs: list[Path], out_dir: Path) -> list[tuple[str, list[str]]]:
    includes = [f"-I{d}" for d in include_dirs]
    outputs = [f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    candidates = []
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc and plugin:
        candidates.append(
            ("protoc + grpc_python_plugin",
             [protoc, f"--plugin=protoc-gen-grpc_python={plugin}", *includes, *outputs]))
    candidates.append(
        ("grpc_tools.protoc", [sys.executable, "-m", "grpc_tools.protoc", *includes, *outputs]))
    return candidates


def load(proto_files: list[str], include_dirs: list[Path]) -> dict[str, ModuleType]:
    """Compiles `proto_files` (paths relative to one of `include_dirs`) and imports the result.

    Returns the generated modules by name: for "tributary/v1/tributary.proto" these are
    "tributary.v1.tributary_pb2" (messages) and "tributary.v1.tributary_pb2_grpc" (stubs).
    """
    out_dir = Path(tempfile.mkdtemp(prefix="tributary-stubs-"))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    failures = []
    for name, command in _generators(include_dirs, out_dir):
        result = subprocess.run([*command, *proto_files], capture_output=True, text=True)
        if result.returncode == 0:
            break
        failures.append(f"{name}: {(result.stderr or result.stdout).strip()[:400]}")
    else:
        raise StubError(
            "cannot generate gRPC stubs; install protobuf-compiler and protobuf-compiler-grpc "
            "(Debian, see deploy/install-deps.sh) or `pip install grpcio-tools`. Tried:\n  "
            + "\n  ".join(failures))
    sys.path.insert(0, str(out_dir))
    modules = {}
    for proto in proto_files:
        base = proto.removesuffix(".proto").replace("/", ".")
        for suffix in ("_pb2", "_pb2_grpc"):
            modules[base + suffix] = importlib.import_module(base + suffix)
    return modules
