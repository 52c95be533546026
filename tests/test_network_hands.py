"""MediaPipe's hand networks run by us: the TFLite reader, the converted networks (torch vs ONNX Runtime),
palm decoding and region geometry on hand-made cases, and end-to-end agreement with MediaPipe's own graph."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from streamhand.detect import palm as P


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """Both networks converted once for this module (the conversion's own parity self-check runs too)."""
    from streamhand.export.hand_networks import prepare_hand_networks

    return prepare_hand_networks(tmp_path_factory.mktemp("hand_networks"))


# --- the reader -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "input_shape", "output_shapes", "ops"),
    [
        ("palm_detection_full", (1, 192, 192, 3), [(1, 2016, 18), (1, 2016, 1)],
         {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PRELU", "MAX_POOL_2D", "PAD", "RESIZE_BILINEAR", "RESHAPE",
          "CONCATENATION", "DEQUANTIZE"}),
        ("hand_landmark_full", (1, 224, 224, 3), [(1, 63), (1, 1), (1, 1), (1, 63)],
         {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "LOGISTIC", "DEQUANTIZE"}),
    ],
)  # fmt: skip
def test_reader_lists_ops_and_shapes(name, input_shape, output_shapes, ops):
    from streamhand.detect.tflite_convert import mediapipe_model_path
    from streamhand.detect.tflite_reader import read_tflite

    m = read_tflite(mediapipe_model_path(name))
    assert set(m.op_counts()) == ops
    assert m.tensors[m.inputs[0]].shape == input_shape
    assert [m.tensors[i].shape for i in m.outputs] == output_shapes
    # weights are float16 behind DEQUANTIZE ops; every conv reads a float32 (dequantised) weight tensor
    deq = [op for op in m.ops if op.op == "DEQUANTIZE"]
    assert deq and all(m.tensors[op.inputs[0]].dtype == np.float16 for op in deq)
    conv = next(op for op in m.ops if op.op == "CONV_2D")
    assert conv.options["padding"] in ("SAME", "VALID") and conv.options["stride_h"] in (1, 2)


def test_reader_rejects_other_files(tmp_path):
    from streamhand.detect.tflite_reader import read_tflite

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a TFLite"):
        read_tflite(bad)


@pytest.mark.parametrize(("size", "k", "stride", "pads"), [(192, 5, 2, (1, 2)), (96, 2, 2, (0, 0)), (12, 3, 1, (1, 1)),
                                                         (7, 3, 2, (1, 1)), (8, 3, 2, (0, 1))])  # fmt: skip
def test_same_padding_pads_more_at_the_end(size, k, stride, pads):
    from streamhand.detect.tflite_convert import _same_pads

    assert _same_pads(size, k, stride) == pads


# --- the converted networks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["palm_detection_full", "hand_landmark_full"])
def test_torch_module_matches_onnxruntime(models_dir, name):
    import onnx
    import onnxruntime as ort
    import torch

    from streamhand.detect.tflite_convert import mediapipe_model_path
    from streamhand.detect.tflite_net import TFLiteNet

    desc = torch.load(str(models_dir / f"{name}.pt"), weights_only=True)  # plain types and tensors only
    net = TFLiteNet(desc).eval()
    h, w = net.input_shape[1:3]
    sess = ort.InferenceSession(str(models_dir / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for batch in (1, 3):  # the batch axis is dynamic
        x = rng.random((batch, h, w, 3), dtype=np.float32)
        with torch.no_grad():
            ref = [t.numpy() for t in net(torch.from_numpy(x))]
        got = sess.run(None, {"input": x})
        for a, b in zip(ref, got):
            assert a.shape == b.shape and a.shape[0] == batch
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    props = onnx.load(str(models_dir / f"{name}.onnx"), load_external_data=False).metadata_props
    meta = {p.key: p.value for p in props}
    src = mediapipe_model_path(name)
    assert meta["streamhand.source"] == src.name
    assert meta["streamhand.source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["streamhand.input_size"] == f"{w}x{h}"
    assert [o.name for o in sess.get_outputs()] == net.output_labels


def test_network_description_is_refused_when_foreign():
    from streamhand.detect.tflite_net import TFLiteNet

    with pytest.raises(ValueError, match="format"):
        TFLiteNet({"format": "something-else"})


# --- palm decoding -----------------------------------------------------------------------------------------


def test_anchors():
    a = P.ssd_anchors()
    assert a.shape == (2016, 2)
    np.testing.assert_allclose(a[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(a[1], a[0])  # two anchors per cell on the stride-8 map
    np.testing.assert_allclose(a[2], [1.5 / 24, 0.5 / 24])  # x runs fastest
    np.testing.assert_allclose(a[48], [0.5 / 24, 1.5 / 24])
    np.testing.assert_allclose(a[1151], [23.5 / 24, 23.5 / 24])
    np.testing.assert_allclose(a[1152:1158], [[0.5 / 12, 0.5 / 12]] * 6)  # six per cell on the stride-16 map
    np.testing.assert_allclose(a[-1], [11.5 / 12, 11.5 / 12])


def test_decode_palms_box_keypoints_and_score_clipping():
    anchors = P.ssd_anchors()
    raw = np.zeros((2016, 18), np.float32)
    scores = np.full(2016, -10.0, np.float32)
    raw[5] = [19.2, -9.6, 38.4, 19.2] + [1.92 * k for k in range(14)]
    scores[5] = 1000.0  # clipped to 100: sigmoid 1
    s, boxes, kps = P.decode_palms(raw, scores, anchors, 0.5)
    assert s.tolist() == [1.0]
    cx, cy = anchors[5] + [0.1, -0.05]
    np.testing.assert_allclose(boxes[0], [cx - 0.1, cy - 0.05, cx + 0.1, cy + 0.05], atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], anchors[5] + [0.02, 0.03], atol=1e-6)
    with pytest.raises(ValueError, match="2016"):
        P.decode_palms(raw[:10], scores, anchors)


def test_weighted_nms():
    a = np.array([0.0, 0.0, 1.0, 1.0])
    b = np.array([0.1, 0.0, 1.1, 1.0])  # IoU with a: 0.9 / 1.1
    c = np.array([3.0, 3.0, 4.0, 4.0])  # apart
    d = np.array([0.5, 0.0, 1.5, 1.0])  # IoU with a: 1/3 > 0.3, merged into a's group
    e = np.array([0.0, 0.0, 1.0, 0.5])  # IoU with c: 0 (and 0.5 with a)
    boxes = np.stack([a, b, c, d, e])
    scores = np.array([0.9, 0.6, 0.8, 0.5, 0.55])
    kps = np.repeat(boxes[:, None, :2], 7, axis=1)
    out = P.weighted_nms(scores, boxes, kps, 0.3)
    assert [round(s, 3) for s, _, _ in out] == [0.9, 0.8]
    w = scores[[0, 1, 3, 4]]
    np.testing.assert_allclose(out[0][1], (boxes[[0, 1, 3, 4]] * w[:, None]).sum(0) / w.sum())
    np.testing.assert_allclose(out[0][2][0], (boxes[[0, 1, 3, 4], :2] * w[:, None]).sum(0) / w.sum())
    np.testing.assert_allclose(out[1][1], c)
    # just under the threshold: kept apart
    f = np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.6, 0.0, 1.6, 1.0])  # IoU 0.4 / 1.6 = 0.25
    out2 = P.weighted_nms(np.array([0.7, 0.6]), np.stack(f), np.zeros((2, 7, 2)), 0.3)
    assert len(out2) == 2


# --- regions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p1", "rotation"),
    [((0, -1), 0.0), ((1, 0), math.pi / 2), ((-1, 0), -math.pi / 2), ((0, 1), -math.pi), ((1, -1), math.pi / 4)],
)
def test_rotation_to_upright(p1, rotation):
    """Image y points down: a hand pointing up needs no rotation, pointing right a quarter turn."""
    assert P.rotation_to_target(np.zeros(2), np.array(p1, float)) == pytest.approx(rotation)


@pytest.mark.parametrize(
    ("box", "kp0", "kp2", "want"),
    [
        # upright palm 40x20 at (120, 110): shifted up by half its height, square on 40, times 2.6
        ((100, 100, 140, 120), (120, 120), (120, 100), (120, 100, 104, 0.0)),
        # fingers to the right: the shift follows them (+x)
        ((100, 100, 140, 120), (110, 110), (130, 110), (130, 110, 104, math.pi / 2)),
        # fingers down
        ((0, 0, 20, 20), (10, 0), (10, 20), (10, 20, 52, -math.pi)),
    ],
)
def test_palm_to_region(box, kp0, kp2, want):
    kps = np.zeros((7, 2))
    kps[0], kps[2] = kp0, kp2
    r = P.palm_to_region(P.PalmDetection(0.9, np.array(box, float), kps))
    assert (r.cx, r.cy, r.width, r.height, r.rotation) == pytest.approx((*want[:3], want[2], want[3]), abs=1e-9)


def _upright_hand(cx: float = 200.0, cy: float = 200.0, s: float = 10.0) -> np.ndarray:
    """21 landmarks of a flat upright hand (wrist at the bottom, fingers up), s pixels per unit."""
    pts = np.zeros((21, 2))
    pts[0] = (0, 8)
    for f, x in enumerate((-3, -1.5, 0, 1.5, 3)):
        for j in range(4):
            pts[1 + 4 * f + j] = (x * (1 + 0.1 * j), 3 - 2.5 * j if f else 6 - 2 * j)
    return pts * s + (cx, cy)


def test_landmarks_to_region_upright_and_rotated():
    pts = _upright_hand()
    r = P.landmarks_to_region(pts)
    sub = pts[list(P.PARTIAL_LANDMARKS)]
    lo, hi = sub.min(0), sub.max(0)
    side = max(hi - lo)
    assert r.rotation == pytest.approx(0.0, abs=1e-12)
    assert (r.cx, r.cy) == pytest.approx(((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2 - 0.1 * (hi[1] - lo[1])))
    assert r.width == pytest.approx(2 * side) and r.height == pytest.approx(2 * side)
    # the same hand turned by 60 degrees about (50, 80): the region turns with it
    t = math.radians(60)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    o = np.array([50.0, 80.0])
    r2 = P.landmarks_to_region((pts - o) @ rot.T + o)
    c2 = rot @ (np.array([r.cx, r.cy]) - o) + o
    assert (r2.cx, r2.cy, r2.width, r2.rotation) == pytest.approx((*c2, r.width, t))


@pytest.mark.parametrize(
    ("region", "crop_pt", "image_pt"),
    [
        (P.Region(100, 50, 224, 224, 0.0), (0, 0), (-12, -62)),
        (P.Region(100, 50, 224, 224, 0.0), (112, 112), (100, 50)),
        (P.Region(100, 50, 112, 112, 0.0), (224, 224), (156, 106)),
        (P.Region(100, 50, 224, 224, math.pi / 2), (112, 0), (212, 50)),  # the crop's top is the image's right
        (P.Region(100, 50, 224, 224, math.pi / 2), (224, 112), (100, 162)),
    ],
)
def test_region_matrix_maps_crop_to_image(region, crop_pt, image_pt):
    m = P.region_matrix(region, 224)
    assert P.apply_matrix(m, np.array(crop_pt, float)) == pytest.approx(image_pt)


def test_letterbox_and_crop_sample_the_right_pixels():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 90:110] = 255  # a white square at the centre
    m = P.letterbox_matrix(200, 100, 192)
    x = P.warp(img, m, 192, zero_border=True)
    assert x[96, 96].tolist() == [255, 255, 255] and x[10, 96].tolist() == [0, 0, 0]
    assert P.apply_matrix(m, np.array([96.0, 96.0])) == pytest.approx((100, 50))
    crop = P.warp(img, P.region_matrix(P.Region(100, 50, 20, 20, 0.3), 224), 224, zero_border=False)
    assert crop[112, 112].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    ("palms", "tracked", "want"),
    [
        ([P.Region(100, 100, 50, 50, 0)], [], [(100, 0)]),
        ([P.Region(100, 100, 50, 50, 0)], [P.Region(105, 100, 50, 50, 1.0)], [(105, 1.0)]),  # the tracked one wins
        ([P.Region(100, 100, 50, 50, 0)], [P.Region(300, 100, 50, 50, 1.0)], [(100, 0), (300, 1.0)]),
        ([P.Region(100, 100, 50, 50, 0)], [P.Region(125, 100, 50, 50, 1.0)], [(100, 0), (125, 1.0)]),  # IoU 1/3
    ],
)
def test_association_prefers_tracked_regions(palms, tracked, want):
    assert [(r.cx, r.rotation) for r in P.associate(palms, tracked)] == want


# --- the detector ------------------------------------------------------------------------------------------


def test_detector_rejects_bad_input(models_dir):
    from streamhand.detect.gpu_hands import NetworkHands

    with pytest.raises(ValueError, match="runtime"):
        NetworkHands(runtime="tflite", models_dir=models_dir)
    with pytest.raises(ValueError, match="device"):
        NetworkHands(device="tpu", models_dir=models_dir)
    with pytest.raises(ValueError, match="max_hands"):
        NetworkHands(max_hands=0, models_dir=models_dir)
    with NetworkHands(tracking=False, models_dir=models_dir) as det:
        for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)):
            with pytest.raises(ValueError, match="RGB uint8"):
                det(bad)
        assert det(np.zeros((120, 160, 3), np.uint8)) == []


def test_default_models_dir_is_in_the_cache_per_mediapipe_release(monkeypatch, tmp_path):
    from streamhand.detect.gpu_hands import default_models_dir

    monkeypatch.delenv("STREAMHAND_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_models_dir() == tmp_path / "streamhand" / "hand_networks" / "mediapipe-0.10.21"
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "sc"))
    assert default_models_dir().parent == tmp_path / "sc" / "hand_networks"


@pytest.fixture(scope="module")
def frames():
    from tests.helpers import rendered_frames

    rgbs, _, _ = rendered_frames(10, width=320, height=240, seed=5)
    return rgbs


def _agreement(ours, ref, frames):
    from streamhand.detect.gpu_hands import compare_with_reference

    return compare_with_reference(ours, ref, frames)


@pytest.mark.slow
def test_static_mode_agrees_with_mediapipe(models_dir, frames):
    from streamhand.detect.gpu_hands import NetworkHands
    from streamhand.detect.mediapipe_hands import MediaPipeHands

    with NetworkHands(tracking=False, models_dir=models_dir) as ours, MediaPipeHands(tracking=False) as ref:
        got = _agreement(ours, ref, frames)
    assert got["frames_with_hand_reference"] >= 6  # the frames do show hands
    assert got["frames_with_hand_ours"] == got["frames_with_hand_reference"] == got["frames_with_hand_both"]
    assert got["pairs"] == got["hands_reference"] == got["hands_ours"]
    assert got["median_px"] < 1.0  # the same networks on the same crops: sub-pixel
    assert got["handedness_agreement"] == 1.0
    assert got["world_mean_mm"] < 2.0


@pytest.mark.slow
def test_tracking_mode_agrees_with_mediapipe_on_the_demo_clip(models_dir):
    from streamhand.capture.demo import demo_clip
    from streamhand.detect.gpu_hands import NetworkHands
    from streamhand.detect.mediapipe_hands import MediaPipeHands

    clip = [f[0] for f in demo_clip(24, 320, 240, hands=2)]
    clip = clip[10:] + clip[:10]  # start with two hands in view
    with NetworkHands(tracking=True, models_dir=models_dir) as ours, MediaPipeHands(tracking=True) as ref:
        got = _agreement(ours, ref, clip)
    assert got["hands_reference"] >= 20
    assert abs(got["hands_ours"] - got["hands_reference"]) <= 1
    assert got["pairs"] >= got["hands_reference"] - 1
    assert got["median_px"] < 3.0
    assert got["handedness_agreement"] >= 0.9


def test_onnxruntime_runtime_matches_torch(models_dir, frames):
    from streamhand.detect.gpu_hands import NetworkHands

    with (NetworkHands(tracking=False, models_dir=models_dir) as a,
          NetworkHands(tracking=False, runtime="onnxruntime", models_dir=models_dir) as b):  # fmt: skip
        _assert_same_hands(a, b, frames[:4], max_px=0.5)  # sub-pixel: two float32 runtimes' sums differ


def test_score_is_the_landmark_networks_presence(models_dir, frames):
    """``score`` is the hand-presence output, not a copy of the handedness score."""
    from streamhand.detect.gpu_hands import NetworkHands

    with NetworkHands(tracking=False, runtime="onnxruntime", models_dir=models_dir) as det:
        landmark, seen = det._landmark, []

        def recording(batch):
            out = landmark(batch)
            seen.append(np.asarray(out[1])[:, 0].astype(float))
            return out

        det._landmark = recording
        dets = [d for rgb in frames[:4] for d in det(rgb)]
    assert dets
    presence = np.concatenate(seen)
    for d in dets:
        assert np.isclose(presence, d.score).any(), (d.score, presence)
    assert any(abs(d.score - d.handedness_score) > 1e-6 for d in dets)


def _assert_same_hands(a, b, frames, max_px: float) -> None:
    """Two detectors find the same hands in ``frames``: landmarks within ``max_px``, the same handedness."""
    for rgb in frames:
        da, db = a(rgb), b(rgb)
        assert len(da) == len(db)
        for x, y in zip(da, db):
            assert np.abs(x.landmarks_px - y.landmarks_px).max() < max_px
            assert x.handedness == y.handedness


@pytest.mark.cuda
@pytest.mark.parametrize("flip_average", [False, True])
def test_cuda_matches_cpu(models_dir, frames, flip_average):
    """Within a pixel: cuDNN runs the convolutions in TF32 (PyTorch's default; 10-bit mantissa), which moved one
    landmark 0.54 px from the CPU's on an H200 (the others under 0.35); flip-averaged as well."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from streamhand.detect.gpu_hands import NetworkHands

    kw = {"tracking": False, "models_dir": models_dir, "flip_average": flip_average}
    with NetworkHands(**kw) as a, NetworkHands(device="cuda", **kw) as b:
        _assert_same_hands(a, b, frames[:4], max_px=1.0)


@pytest.mark.cuda
def test_cuda_graphs_of_every_crop_count_are_captured_at_start(models_dir):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from streamhand.detect.gpu_hands import NetworkHands

    with NetworkHands(max_hands=2, device="cuda", models_dir=models_dir) as det:
        assert len(det._palm._graphs) == 1 and len(det._landmark._graphs) == 3
    with NetworkHands(max_hands=2, device="cuda", models_dir=models_dir, flip_average=True) as det:
        assert len(det._landmark._graphs) == 6  # every crop read with its mirror



# --- flip averaging ----------------------------------------------------------------------------------------


def test_flip_averaging_reflects_readings_back_exactly():
    """A stand-in network that reads a marker's column: the crop and its mirror, read and un-mirrored, agree."""
    from streamhand.detect.gpu_hands import flip_averaged

    cols = [3, 100, 200]
    crops = np.zeros((len(cols), 224, 224, 3), np.float32)
    for i, c in enumerate(cols):
        crops[i, 50, c] = 1.0

    def reader(x):
        col = x[:, 50, :, 0].argmax(1).astype(np.float32)
        lms = np.zeros((len(x), 63), np.float32)
        lms[:, 0::3], lms[:, 1::3], lms[:, 2::3] = col[:, None], 50.0, 7.0
        world = np.zeros((len(x), 63), np.float32)
        world[:, 0::3] = (col[:, None] - 111.5) / 1000  # x in metres about the crop's centre
        world[:, 1::3] = 0.02
        left = (col < 112).astype(np.float32)[:, None] * 0.6 + 0.2  # "first label" 0.8 left of centre, else 0.2
        return [lms, np.full((len(x), 1), 0.9, np.float32), left, world]

    plain = reader(crops)
    got = flip_averaged(reader, crops)
    assert [g.shape for g in got] == [p.shape for p in plain]
    for g, p in zip(got, plain):
        np.testing.assert_allclose(g, p, atol=1e-6)  # the mirror's reading, un-mirrored, is the crop's own


def test_flip_averaged_detections_are_the_mean_of_crop_and_mirror(models_dir, frames):
    """The detector's flip-averaged landmarks equal the mean of two plain readings: the region's crop, and the crop
    sampled through the region's matrix reflected (an independent way to read the mirror and map it back). The two
    mirrors are sampled at positions that differ by OpenCV's 1/32-pixel grid, hence a tenth of a pixel of tolerance;
    a reflection off by one pixel would be off by half a pixel."""
    from streamhand.detect.gpu_hands import NetworkHands

    ort = {"tracking": False, "runtime": "onnxruntime", "models_dir": models_dir}
    with NetworkHands(**ort) as plain, NetworkHands(**ort, flip_average=True) as flip:
        checked = 0
        for rgb in frames[:4]:
            got = flip(rgb)
            plain(rgb)
            assert [r.cx for r in flip.last_regions] == [r.cx for r in plain.last_regions]
            for d, r in zip(got, flip.last_regions):
                m = P.region_matrix(r, P.LANDMARK_INPUT)
                mirror = m @ np.array([[-1.0, 0, P.LANDMARK_INPUT - 1], [0, 1, 0], [0, 0, 1]])
                crops = np.stack([P.warp(rgb, a, P.LANDMARK_INPUT, zero_border=False) for a in (m, mirror)])
                lms, _, handed, world = plain._landmark(crops.astype(np.float32) / 255.0)
                px = [P.apply_matrix(a, lms[k].reshape(21, 3)[:, :2]) for k, a in enumerate((m, mirror))]
                np.testing.assert_allclose(d.landmarks_px, (px[0] + px[1]) / 2, atol=0.2)
                w = world.reshape(2, 21, 3).astype(np.float64)
                w[1, :, 0] *= -1
                mean = w.mean(0)
                c, s = math.cos(r.rotation), math.sin(r.rotation)
                turned = np.stack([c * mean[:, 0] - s * mean[:, 1], s * mean[:, 0] + c * mean[:, 1], mean[:, 2]], -1)
                np.testing.assert_allclose(d.world, turned, atol=1e-3)  # metres
                p_first = (float(handed[0, 0]) + 1.0 - float(handed[1, 0])) / 2
                assert math.isclose(d.handedness_score, max(p_first, 1 - p_first), abs_tol=1e-2)
                checked += 1
    assert checked >= 2


def test_landmark_batches_are_split_to_the_runtimes_limit(models_dir, frames):
    """A runtime with a batch limit (a TensorRT engine's profile) gets the crops in batches it takes."""
    from streamhand.detect.gpu_hands import NetworkHands

    with NetworkHands(tracking=False, runtime="onnxruntime", models_dir=models_dir, flip_average=True) as det:
        want = [d.landmarks_px for d in det(frames[0])]
        landmark, sizes = det._landmark, []

        class Limited:
            max_batch = 1

            def __call__(self, x):
                sizes.append(len(x))
                assert len(x) <= self.max_batch
                return landmark(x)

        det._landmark = Limited()
        got = [d.landmarks_px for d in det(frames[0])]
    assert want and sizes == [1] * 2 * len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_a_cache_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    from streamhand.export.hand_networks import prepare_hand_networks
    from streamhand.model_files import ExportError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ExportError, match=r"could not be written into .*file/nets .*point STREAMHAND_CACHE at a"):
        prepare_hand_networks(tmp_path / "file" / "nets")


@pytest.mark.slow
def test_damaged_networks_in_the_cache_are_converted_again(models_dir, tmp_path, monkeypatch, caplog):
    """A conversion cut short by a kill can leave a file that does not load; the detector's next first use converts
    the networks again (with a warning) instead of failing every run until the cache is cleared by hand."""
    import shutil

    from streamhand.app import make_detector
    from streamhand.detect.gpu_hands import default_models_dir
    from streamhand.runtime_config import RunConfig

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    cached = default_models_dir()
    shutil.copytree(models_dir, cached)
    palm = cached / "palm_detection_full.onnx"
    palm.write_bytes(palm.read_bytes()[:100_000])
    caplog.set_level("WARNING")
    cfg = RunConfig.model_validate({"detect": {"detector": "network", "network_runtime": "onnxruntime"}})
    with make_detector(cfg, tracking=True) as det:
        assert det(np.zeros((240, 320, 3), np.uint8)) == []
    assert "do not load" in caplog.text and "converting them again" in caplog.text
    assert palm.stat().st_size > 1_000_000
