"""Records that must agree: the Trials and what MLflow holds about them.

A shared helper beside ``mlflow_onnx``: the ``thunderbolt check mlflow`` command and the
operator's periodic check both compare with ``records.consistency``, so a disagreement
means the same thing in a terminal and in an Experiment's ``RecordsConsistent`` condition.
"""
