"""Hand detection (MediaPipe Hands), square crops for the image encoders, and stable track ids."""

from streamhand.detect.crops import CropBox, crop_square, square_box
from streamhand.detect.mediapipe_hands import Detection, MediaPipeHands
from streamhand.detect.tracker import HandednessVote, TrackLinker

__all__ = ["CropBox", "Detection", "HandednessVote", "MediaPipeHands", "TrackLinker", "crop_square", "square_box"]
