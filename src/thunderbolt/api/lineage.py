"""The MLflow tags that tie a registered model back to its Trial: one home for the names.

The trainer (``sdk.tracking``) writes them, the deploy controller (``deploy.sources``)
verifies a model version with them, and ``thunderbolt check mlflow`` compares them with
the Trials. Run tags carry the Trial's identity from the start of the run; the checksum
is added to the run and to the registered version when the model is published, the
objective when the run finishes.
"""

from __future__ import annotations

# On the registered model version and its run: the ONNX file's "sha256:<hex>".
CHECKSUM_TAG = "thunderbolt.io/checksum"
# Names other tools use for the same fact; read (never written) by the controller.
CHECKSUM_TAG_ALIASES = ("thunderbolt.io/model-checksum", "model_checksum", "checksum")

# The Trial's identity (run tags since the first release; also on the model version).
NAMESPACE_TAG = "thunderbolt.namespace"
EXPERIMENT_TAG = "thunderbolt.experiment"
TRIAL_TAG = "thunderbolt.trial"
TRIAL_UID_TAG = "thunderbolt.trial_uid"
TRIAL_NUMBER_TAG = "thunderbolt.trial_number"
IDENTITY_TAGS = (NAMESPACE_TAG, EXPERIMENT_TAG, TRIAL_TAG, TRIAL_UID_TAG, TRIAL_NUMBER_TAG)

# On the run once it finished: the Trial's objective (what the Trial's status records,
# e.g. the cross-validated mean, not the last logged epoch) and the metric it measures.
OBJECTIVE_TAG = "thunderbolt.objective"
OBJECTIVE_METRIC_TAG = "thunderbolt.objective_metric"

# On the run once it finished: the training code's revision, when the image provides it.
CODE_REVISION_TAG = "thunderbolt.code_revision"

# On a model version: "true" keeps every ModelDeployment from deploying it again.
DEPRECATED_TAG = "thunderbolt.io/deprecated"


def normalize_checksum(value: str) -> str:
    """``sha256:<hex>`` whether or not the tag had the prefix; lower case."""
    value = value.strip().lower()
    return value if value.startswith("sha256:") else f"sha256:{value}"


def tagged_checksum(*tag_sets: dict[str, str] | None) -> str | None:
    """The first checksum tag found, the project's own name first."""
    for tags in tag_sets:
        for key in (CHECKSUM_TAG, *CHECKSUM_TAG_ALIASES):
            value = (tags or {}).get(key)
            if value:
                return normalize_checksum(value)
    return None


def is_deprecated(tags: dict[str, str] | None) -> bool:
    return (tags or {}).get(DEPRECATED_TAG, "").strip().lower() in ("true", "1", "yes")
