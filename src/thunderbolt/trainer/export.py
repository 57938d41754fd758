"""The built-in trainer's export: its network wrapped for serving, described by its data.

The export itself (fold spectral norm, ONNX, onnxruntime parity, sha256, upload, MLflow
registration) is ``thunderbolt.sdk.torch.export``, shared with SDK scripts; this adds
what only the built-in trainer knows: probabilities or target units out, and the
dataset's feature names, classes and standardization in the metadata.
"""

from __future__ import annotations

import json

from torch import nn

from thunderbolt.sdk.torch.export import Exported, export
from thunderbolt.sdk.trial import Trial
from thunderbolt.trainer.data import Dataset
from thunderbolt.trainer.model import InferenceModel


def export_trained(net: nn.Module, data: Dataset, trial: Trial, family: str) -> Exported:
    """Export on the validation rows, write and publish through ``trial``."""
    model = InferenceModel(net, data.task, data.target_mean, data.target_std)
    return export(
        model, data.x_val[:2], trial, validation=data.x_val, metadata=metadata(data, family)
    )


def metadata(data: Dataset, family: str) -> dict[str, str]:
    props = {
        "thunderbolt.task": data.task,
        "thunderbolt.model_family": family,
        "thunderbolt.output_kind": "probabilities" if data.task == "classification" else "values",
        "thunderbolt.feature_names": json.dumps(data.feature_names),
        "thunderbolt.standardization": json.dumps(
            {"mean": data.mean.ravel().tolist(), "std": data.std.ravel().tolist()}
        ),
    }
    if data.class_labels is not None:
        props["thunderbolt.class_labels"] = json.dumps(data.class_labels)
    else:
        props["thunderbolt.target_standardization"] = json.dumps(
            {"mean": data.target_mean, "std": data.target_std}
        )
    return props
