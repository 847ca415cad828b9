"""Pictures in, ``Detections`` out: the backends (Ultralytics ``detector``, OpenVINO/ONNX Runtime ``fast``),
NMS and letterbox, which files may load (``registry``), the model card (``card``) and the set-up a
detector runs with (``setup``: backend, precision, streams, threads, and this machine's tune record)."""
