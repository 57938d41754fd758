"""``inference.GRPCInferenceService``: the V2 protocol over gRPC, beside the HTTP server.

It serves the same ``ServingState`` as the HTTP routes, so both share the checksum gate
(not ready until the model verified and loaded), the batcher (gRPC and HTTP requests join
the same batches), the size limit (``--max-body-bytes`` is the largest message) and the
metrics: a gRPC request is counted under the HTTP code its status stands for (200, 400,
404, 500, 503), so canary analysis judges gRPC traffic too. The methods are registered by
name rather than through a generated stub module (see ``hack/gen_grpc.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

import thunderbolt
from thunderbolt.serving.app import ServingState
from thunderbolt.serving.grpc_protocol import encode_grpc_response, parse_grpc_request
from thunderbolt.serving.memory import BudgetExceeded, Lease, output_bytes, tensor_cost
from thunderbolt.serving.model import ModelRunError
from thunderbolt.serving.protocol import InferError
from thunderbolt.serving.v2grpc import open_inference_grpc_pb2 as pb

log = logging.getLogger(__name__)
SERVICE = "inference.GRPCInferenceService"
STATUS_FOR_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}


class _Abort(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class InferenceService:
    """The six V2 RPCs over one ``ServingState``."""

    def __init__(self, state: ServingState) -> None:
        self.state = state

    def _check_model(self, name: str, version: str) -> None:
        state = self.state
        if name != state.model_name:
            raise _Abort(404, f"unknown model {name!r}; this server serves {state.model_name!r}")
        if version and version != state.model_version:
            raise _Abort(
                404,
                f"unknown version {version!r} of {name!r}; serving version {state.model_version!r}",
            )

    async def server_live(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.state.ready)

    async def model_ready(self, request: Any, context: Any) -> Any:
        try:
            self._check_model(request.name, request.version)
        except _Abort as exc:
            await context.abort(STATUS_FOR_HTTP[exc.status], exc.message)
        return pb.ModelReadyResponse(ready=self.state.ready)

    async def server_metadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(
            name="thunderbolt", version=thunderbolt.__version__, extensions=["binary_tensor_data"]
        )

    async def model_metadata(self, request: Any, context: Any) -> Any:
        state = self.state
        try:
            self._check_model(request.name, request.version)
            if state.model is None:
                raise _Abort(
                    503, f"model {state.model_name!r} is not ready: {state.not_ready_reason}"
                )
        except _Abort as exc:
            await context.abort(STATUS_FOR_HTTP[exc.status], exc.message)
        assert state.model is not None
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=state.model_name,
            versions=[state.model_version],
            platform="onnxruntime_onnx",
            inputs=[
                tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in state.model.inputs
            ],
            outputs=[
                tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in state.model.outputs
            ],
        )

    async def model_infer(self, request: Any, context: Any) -> Any:
        state = self.state
        started = time.perf_counter()
        state.inflight += 1
        code = 500
        try:
            with state.budget.lease() as lease:
                response = await self._infer(request, lease)
            code = 200
            return response
        except _Abort as exc:
            code = exc.status
            await context.abort(STATUS_FOR_HTTP[exc.status], exc.message)
        finally:
            state.inflight -= 1
            if not state.inflight:
                state.idle.set()
            if request.model_name == state.model_name:
                state.count(code, time.perf_counter() - started)

    async def _infer(self, request: Any, lease: Lease) -> Any:
        state = self.state
        self._check_model(request.model_name, request.model_version)
        model = state.model
        if model is None or state.batcher is None or state.draining:
            raise _Abort(503, f"model {state.model_name!r} is not ready")
        try:
            # grpc has received the message already: account for it and its decoding
            # (raw contents are copied out of the message once) before going further
            size = request.ByteSize()
            lease.resize(2 * size, "decoding this request")
            with state.batcher.arrival():
                parsed = parse_grpc_request(request, model.inputs, model.outputs)
            out = output_bytes((s.shape for s in model.outputs), parsed.rows)
            lease.resize(size + tensor_cost(parsed.inputs.values(), out), "this request")
            results = await state.batcher.infer(parsed)
        except BudgetExceeded as exc:
            raise _Abort(exc.status, exc.message) from None
        except InferError as exc:
            raise _Abort(exc.status, exc.message) from None
        except ModelRunError as exc:
            log.warning("inference failed: %s", exc)
            raise _Abort(500, str(exc)) from None
        return encode_grpc_response(
            state.model_name, state.model_version, parsed, results, request.parameters
        )


class _Undecodable:
    """A message protobuf could not parse (grpc would answer INTERNAL for it)."""


def _lenient(request_type: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return request_type.FromString(data)
        except DecodeError:
            return _Undecodable()

    return parse


def _handler(
    method: Callable[[Any, Any], Awaitable[Any]], request_type: Any, response_type: Any
) -> grpc.RpcMethodHandler:
    async def checked(request: Any, context: Any) -> Any:
        if isinstance(request, _Undecodable):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"not a valid {request_type.DESCRIPTOR.name}"
            )
        return await method(request, context)

    return grpc.unary_unary_rpc_method_handler(
        checked,
        request_deserializer=_lenient(request_type),
        response_serializer=response_type.SerializeToString,
    )


def generic_handler(service: InferenceService) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ServerLive": _handler(
                service.server_live, pb.ServerLiveRequest, pb.ServerLiveResponse
            ),
            "ServerReady": _handler(
                service.server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse
            ),
            "ModelReady": _handler(
                service.model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse
            ),
            "ServerMetadata": _handler(
                service.server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse
            ),
            "ModelMetadata": _handler(
                service.model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse
            ),
            "ModelInfer": _handler(
                service.model_infer, pb.ModelInferRequest, pb.ModelInferResponse
            ),
        },
    )


async def start_grpc_server(
    state: ServingState, host: str, port: int, *, reuse_port: bool = False
) -> Any:
    """A started ``grpc.aio`` server on the running event loop. Without ``reuse_port`` a
    port taken by another process is an error rather than a silently shared listener."""
    limit = state.max_body_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    server.add_generic_rpc_handlers([generic_handler(InferenceService(state))])
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    await server.start()
    return server
