"""The inference server: one ONNX model over the Open Inference Protocol (V2).

Layers, outermost first: ``server`` (process lifecycle), ``app`` (HTTP routes),
``batching`` (dynamic batching), ``protocol`` (V2 decoding/encoding), ``model``
(onnxruntime), ``source`` (where the bytes come from). ``promparse`` is the pure
/metrics reader the ModelDeployment controller uses. Nothing here imports torch.
"""
