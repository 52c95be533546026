"""Hand detection (MediaPipe Hands), square crops for the image encoders, and stable track ids."""

from streamhand.detect.crops import CropBox, crop_square, square_box
from streamhand.detect.mediapipe_hands import Detection, MediaPipeHands
from streamhand.detect.tracker import HandTracker

__all__ = ["CropBox", "Detection", "HandTracker", "MediaPipeHands", "crop_square", "square_box"]
