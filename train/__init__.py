"""Offline training and evaluation for streamhand (``python -m train ...``); not installed."""
