"""MediaPipe Hands' own graph with one more output: each hand's presence score.

MediaPipe's landmark network gives, beside the 21 landmarks and the handedness, a score that the crop holds a hand
(the "hand flag"). Its graph compares it with ``min_tracking_confidence`` and drops the hand below it, but does not
output it. Here the packaged graph (``hand_landmark_tracking_cpu``, MediaPipe 0.10.21) is expanded with its
subgraphs and given two more nodes: the score, gated as the landmarks are, collected over the frame's hands as
``multi_hand_presence`` (one float per hand, in the order of ``multi_hand_landmarks``). Every other node is
MediaPipe's own, with the same side packets and options as ``mediapipe.solutions.hands.Hands``, so the landmarks,
world landmarks and handedness are what that class gives, and the score costs nothing more. Its ``process`` is
MediaPipe's, less the named-tuple class MediaPipe builds anew for the outputs on every frame.
"""

from __future__ import annotations

import os
from collections import namedtuple
from typing import Any

#: the packaged graph and the streams inside it that the score is taken from (MediaPipe 0.10.21)
GRAPH = "mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb"
_SCORE = "handlandmarkcpu__hand_presence_score"
_PRESENT = "handlandmarkcpu__hand_presence"
_BATCH_END = "hand_rects_timestamp"
OUTPUTS = ("multi_hand_landmarks", "multi_hand_world_landmarks", "multi_handedness", "multi_hand_presence")
#: what ``process`` returns: one class for every frame (MediaPipe's own ``process`` builds a new named-tuple class on
#: each call, about 0.3 ms of a frame's Python on a 2-core CPU, and garbage with cycles for the collector)
HandsOutputs = namedtuple("HandsOutputs", OUTPUTS)


def graph_with_presence() -> Any:
    """The packaged hands graph, subgraphs expanded, with ``multi_hand_presence`` added (a CalculatorGraphConfig).
    Raises RuntimeError where this MediaPipe's graph lacks the streams the score is read from."""
    import mediapipe
    from mediapipe.framework import calculator_pb2
    from mediapipe.python._framework_bindings import validated_graph_config

    root = os.path.dirname(os.path.dirname(mediapipe.__file__))
    packaged = calculator_pb2.CalculatorGraphConfig()
    with open(os.path.join(root, GRAPH), "rb") as f:
        packaged.ParseFromString(f.read())
    validated = validated_graph_config.ValidatedGraphConfig()
    validated.initialize(graph_config=packaged)
    graph = calculator_pb2.CalculatorGraphConfig()
    graph.ParseFromString(validated.binary_config)
    streams = {s.split(":")[-1] for n in graph.node for s in n.output_stream}
    missing = {_SCORE, _PRESENT, _BATCH_END} - streams
    if missing:
        raise RuntimeError(f"MediaPipe {mediapipe.__version__}'s hands graph has no {', '.join(sorted(missing))}")
    gate = graph.node.add(calculator="GateCalculator", output_stream=["present_hand_score"])
    gate.input_stream.extend([_SCORE, f"ALLOW:{_PRESENT}"])  # only the hands whose landmarks are output
    collect = graph.node.add(calculator="EndLoopFloatCalculator", output_stream=["ITERABLE:multi_hand_presence"])
    collect.input_stream.extend(["ITEM:present_hand_score", f"BATCH_END:{_BATCH_END}"])
    graph.output_stream.append("PRESENCE:multi_hand_presence")
    return graph


def hands_with_presence(static_image_mode: bool, max_num_hands: int, model_complexity: int,
                        min_detection_confidence: float, min_tracking_confidence: float) -> Any:  # fmt: skip
    """A MediaPipe solution like ``mediapipe.solutions.hands.Hands(...)`` (the same arguments) whose ``process``
    also gives ``multi_hand_presence``, as a :data:`HandsOutputs`."""
    from mediapipe.python.solution_base import SolutionBase

    class HandsWithPresence(SolutionBase):
        def process(self, input_data: Any) -> HandsOutputs:
            """One RGB image (H, W, 3) through the graph, as ``SolutionBase.process`` does (the same packet and
            timestamps), its outputs returned without making a class for them."""
            self._graph_outputs.clear()
            self._simulated_timestamp += 33333  # MediaPipe's own step: 30 frames a second
            ((stream, kind),) = self._input_stream_type_info.items()
            self._graph.add_packet_to_input_stream(
                stream=stream, packet=self._make_packet(kind, input_data).at(self._simulated_timestamp)
            )
            self._graph.wait_until_idle()
            got, kinds = self._graph_outputs, self._output_stream_type_info
            return HandsOutputs(*(self._get_packet_content(kinds[s], got[s]) if s in got else None for s in OUTPUTS))

    return HandsWithPresence(
        graph_config=graph_with_presence(),
        side_inputs={
            "model_complexity": model_complexity,
            "num_hands": max_num_hands,
            "use_prev_landmarks": not static_image_mode,
        },
        calculator_params={
            "palmdetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence,
            "handlandmarkcpu__ThresholdingCalculator.threshold": min_tracking_confidence,
        },
        outputs=list(OUTPUTS),
    )
