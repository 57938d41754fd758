"""Generated protobuf messages of the V2 gRPC service (``hack/gen_grpc.py`` regenerates them)."""
