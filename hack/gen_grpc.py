"""Regenerate the checked-in protobuf module of the V2 gRPC service from its .proto.

    python hack/gen_grpc.py        (needs grpcio-tools, in the test extra)

Only the messages are generated (``open_inference_grpc_pb2.py`` and its ``.pyi``); the
server registers the service's methods itself (``thunderbolt.serving.grpc_service``), so
no generated gRPC stub module has to match the installed grpcio. The messages are built in
a private descriptor pool: tritonclient.grpc registers its own ``inference.*`` messages in
the default pool, and both must be importable in one process (tests, the benchmark).
"""

from __future__ import annotations

import pathlib
import sys

from grpc_tools import protoc

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "thunderbolt" / "serving" / "v2grpc"
PROTO = "open_inference_grpc.proto"


def main() -> int:
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PACKAGE}",
            f"--python_out={PACKAGE}",
            f"--pyi_out={PACKAGE}",
            str(PACKAGE / PROTO),
        ]
    )
    if code == 0:
        module = PACKAGE / PROTO.replace(".proto", "_pb2.py")
        text = module.read_text()
        default = "_descriptor_pool.Default().AddSerializedFile("
        assert default in text, "protoc output changed: update hack/gen_grpc.py"
        text = text.replace(default, "_descriptor_pool.DescriptorPool().AddSerializedFile(")
        module.write_text("# ruff: noqa\n# mypy: ignore-errors\n" + text)
        print(f"wrote {PACKAGE / PROTO.replace('.proto', '_pb2.py')} and .pyi")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
