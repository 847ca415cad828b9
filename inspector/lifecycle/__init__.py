"""What happens to a model after training: ``export`` (ONNX, INT8), ``tune`` (the fastest safe set-up on
this machine), ``compare`` (champion against challenger on the same parts)."""
