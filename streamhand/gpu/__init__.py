"""GPU runners that the model backends (:mod:`streamhand.infer`) and the hand detector's networks
(:mod:`streamhand.detect.gpu_hands`) share: CUDA graph replay of a PyTorch module and a TensorRT engine runner.
Both import their libraries lazily or only where a GPU path is taken."""
