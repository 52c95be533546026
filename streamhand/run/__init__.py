"""A run: the threaded pipeline and its hand-offs, each stage's work (capture with the frame guard, emit: place,
smooth and publish), the watchdog, statistics, scoring against ground truth, the run report and the live line."""
