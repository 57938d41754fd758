"""Thunderbolt: hyperparameter search to served ONNX models, as a Kubernetes operator."""

__version__ = "0.1.0"
