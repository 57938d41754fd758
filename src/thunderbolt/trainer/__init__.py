"""The trainer behind ``thunderbolt train``: data by URI, an MLP built from the Trial's
parameters, a seeded training loop with health checks and checkpoints, ONNX export
verified with onnxruntime, upload and MLflow tracking.

Public entry point: :func:`thunderbolt.trainer.run.train`. Importing this package does
not import torch; the modules that need it do.
"""
