"""The inference server: one ONNX model over the Open Inference Protocol (V2).

Layers, outermost first: ``server`` (process lifecycle), ``app`` (HTTP routes),
``batching`` (dynamic batching), ``protocol`` (V2 decoding/encoding), ``model``
(onnxruntime), ``source`` (where the bytes come from). The controller reads the
``/metrics`` these pods expose with ``thunderbolt.deploy.promparse``. Nothing here
imports torch.
"""
