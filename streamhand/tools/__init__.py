"""Tools around a run: latency benchmarks, the soak test, and what `streamhand info` prints."""
