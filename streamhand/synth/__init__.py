"""Synthetic hands: kinematic model, pose sampler and renderer (RGB, depth, mask)."""
