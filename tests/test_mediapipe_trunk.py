"""The RGB expert on MediaPipe's landmark trunk: the cut is where the network's heads read, the trunk is frozen,
crops and precomputed features give the same expert, the model's config refuses what the trunk cannot read, an
rgb model with it exports to ONNX with parity, and training's replayed pool is seeded and resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamhand.models import HandPoseModel, ModelConfig


@pytest.fixture(scope="module")
def network():
    """MediaPipe's whole landmark network, converted in memory."""
    from streamhand.detect.tflite_convert import LANDMARK, describe

    return describe(LANDMARK)


@pytest.fixture(scope="module")
def trunk(network):
    from streamhand.models.mediapipe_trunk import LandmarkTrunk, trunk_description

    return LandmarkTrunk(trunk_description(network)).eval()


def _crops(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 3, 224, 224)).astype(np.float32))


def test_the_trunk_ends_where_the_networks_heads_read(network, trunk):
    from streamhand.detect.tflite_net import TFLiteNet
    from streamhand.models.mediapipe_trunk import TRUNK_FEATURES

    full = TFLiteNet(network).eval()
    x = _crops(2)
    with torch.no_grad():
        outs = dict(zip(full.output_labels, full((x + 0.5).permute(0, 2, 3, 1))))
        f = trunk(x)
    assert f.shape == (2, TRUNK_FEATURES)
    # the network's world landmarks are one fully connected layer of the trunk's features
    head = next(op for op in network["ops"] if op["op"] == "linear" and op["out"] == full.output_names[3])
    w, b = (torch.as_tensor(network["consts"][head[k]], dtype=torch.float32) for k in ("w", "b"))
    np.testing.assert_allclose((f @ w.T + b).numpy(), outs["world_landmarks"].numpy(), atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in trunk.parameters()) and not list(trunk.parameters())


def test_the_trunk_refuses_crops_of_another_size(trunk):
    with pytest.raises(ValueError, match="224x224"):
        trunk(torch.zeros(1, 3, 128, 128))


def test_crops_and_their_features_give_the_same_expert(network):
    from streamhand.models.mediapipe_trunk import MediaPipeTrunkEncoder, trunk_description

    torch.manual_seed(0)
    enc = MediaPipeTrunkEncoder(z_dim=8, hidden=32, description=trunk_description(network)).eval()
    x = _crops(3, seed=1)
    mu, logvar = enc(x)
    mu_f, logvar_f = enc(enc.features(x))
    assert mu.shape == logvar.shape == (3, 8)
    torch.testing.assert_close(mu, mu_f)
    torch.testing.assert_close(logvar, logvar_f)
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") for n in trainable)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_size": 128}, "reads 224x224 crops: set image_size 224"),
        ({"encoders": ["2d", "depth", "3d"]}, "no depth or rgb\\+cloud encoder"),
        ({"encoders": ["2d", "rgb+cloud", "3d"]}, "no depth or rgb\\+cloud encoder"),
        ({"architecture": "dcmls"}, "architecture poe"),
    ],
)  # fmt: skip
def test_config_refuses_what_the_trunk_cannot_read(changes, message):
    base = {"encoders": ["2d", "rgb", "3d"], "decoders": ["3d"], "image_size": 224, "image_encoder": "mediapipe"}
    ModelConfig(**base)  # the valid one
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{**base, **changes})


@pytest.mark.slow
def test_an_rgb_model_on_the_trunk_exports_with_parity(tmp_path):
    import onnxruntime as ort

    from streamhand.checkpoint import save_checkpoint
    from streamhand.export import export_onnx
    from streamhand.export.graph import INPUT_NAMES
    from streamhand.infer import TorchBackend

    torch.manual_seed(3)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "rgb", "3d"], decoders=["3d"], image_size=224,
                      image_encoder="mediapipe", crop_view="turned")  # fmt: skip
    ck = save_checkpoint(tmp_path / "mp.pt", HandPoseModel(cfg))
    art = export_onnx(ck, ("2d", "rgb"), tmp_path / "m.onnx", n_samples=0)
    sess = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = {"2d": rng.normal(0, 0.5, (2, 21, 2)).astype(np.float32), "rgb": _crops(2, seed=2).numpy()}
    got = sess.run(None, {INPUT_NAMES[m]: x[m] for m in ("2d", "rgb")})
    want = TorchBackend(ck, n_samples=0).infer(x)
    np.testing.assert_allclose(got[0], want.joints, atol=1e-4, rtol=0)


def _stream(batch: int):
    """Endless batches whose samples are numbered (x2d[:, 0, 0]) in the order they are made."""
    from train.datasets.pairs import PoseBatch

    k = 0
    while True:
        ids = torch.arange(k, k + batch, dtype=torch.float32)
        z = torch.zeros(batch, 21, 3)
        x2d = torch.zeros(batch, 21, 2)
        x2d[:, 0, 0] = ids
        yield PoseBatch(x2d, z, x2d[..., :2].clone(), z, np.zeros((batch, 3, 3)), np.zeros((batch, 21, 3)),
                        np.ones(batch), np.zeros(batch, bool), {"rgb": ids[:, None].repeat(1, 4)})  # fmt: skip
        k += batch


def test_pool_replays_each_sample_once_a_pass_in_a_seeded_order():
    from train.datasets.synthetic import pooled

    made = []

    def convert(b):
        made.append(int(b.x2d[0, 0, 0]))
        b.images["rgb"] = b.images["rgb"][:, :1] * 10  # as a trunk's features replace a crop
        return b

    run = pooled(_stream(4), 16, 4, seed=5, convert=convert)
    steps = [next(run) for _ in range(12)]  # three passes of four batches
    assert made == [0, 4, 8, 12]  # the pool's four batches were made and converted once
    for p in range(3):
        ids = np.concatenate([s.x2d[:, 0, 0].numpy() for s in steps[4 * p : 4 * p + 4]])
        assert sorted(ids) == list(range(16))
    first, second = (np.concatenate([s.x2d[:, 0, 0].numpy() for s in steps[a : a + 4]]) for a in (0, 4))
    assert not np.array_equal(first, second)  # each pass in its own order
    np.testing.assert_array_equal(steps[5].images["rgb"][:, 0].numpy(), steps[5].x2d[:, 0, 0].numpy() * 10)
    resumed = pooled(_stream(4), 16, 4, seed=5, start_step=7)
    np.testing.assert_array_equal(next(resumed).x2d.numpy(), steps[7].x2d.numpy())
