"""Thunderbolt: hyperparameter search to served ONNX models, as a Kubernetes operator."""

__version__ = "0.1.0"

GROUP = "thunderbolt.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
