"""Synthetic hands: the kinematic model and pose sampler, the skinned hand mesh and its OpenGL raster, indoor scenes,
webcam and RealSense models, and the renderer that puts them together (RGB, depth, mask)."""
