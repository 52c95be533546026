import pytest
import torch

from streamhand.models import HandPoseModel, ModelConfig, product_of_experts
from streamhand.models.decoders import ImageDecoder
from streamhand.models.encoders import ResNetEncoder, load_torchvision_resnet18
from streamhand.models.poe import kl_to_standard_normal


def _torchvision_resnet18_keys() -> dict[str, tuple]:
    """The state_dict layout of torchvision.models.resnet18 (written out: torchvision is not installed)."""
    keys: dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix, c):
        for k in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.{k}"] = (c,)
        keys[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    cin = 64
    for li, c in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            p = f"layer{li}.{b}"
            keys[f"{p}.conv1.weight"] = (c, cin if b == 0 else c, 3, 3)
            bn(f"{p}.bn1", c)
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            bn(f"{p}.bn2", c)
            if b == 0 and li > 1:
                keys[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                bn(f"{p}.downsample.1", c)
        cin = c
    keys["fc.weight"] = (1000, 512)
    keys["fc.bias"] = (1000,)
    return keys


def test_resnet_keys_match_torchvision():
    ref = _torchvision_resnet18_keys()
    assert len(ref) == 122
    sd = ResNetEncoder(3, 64).state_dict()
    assert set(sd) == set(ref)
    for k, shape in ref.items():
        if not k.startswith("fc."):
            assert tuple(sd[k].shape) == shape, k
    assert tuple(sd["fc.weight"].shape) == (128, 512)


def test_load_torchvision_weights_into_depth_encoder():
    ref = {k: torch.randn(s) if s else torch.tensor(0) for k, s in _torchvision_resnet18_keys().items()}
    enc = ResNetEncoder(1, 32)
    missing = load_torchvision_resnet18(enc, ref)
    assert set(missing) == {"fc.weight", "fc.bias"}
    torch.testing.assert_close(enc.conv1.weight, ref["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(enc.layer3[0].downsample[0].weight, ref["layer3.0.downsample.0.weight"])


def test_poe_matches_closed_form():
    torch.manual_seed(0)
    mus = [torch.randn(4, 8) for _ in range(3)]
    lvs = [torch.randn(4, 8) for _ in range(3)]
    mu, lv = product_of_experts(mus, lvs)
    prec = 1.0 + sum(torch.exp(-v) for v in lvs)  # prior counted exactly once
    mean = sum(m * torch.exp(-v) for m, v in zip(mus, lvs)) / prec
    torch.testing.assert_close(lv, -torch.log(prec), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mu, mean, rtol=1e-5, atol=1e-5)


def test_poe_single_expert_with_prior_is_shrunk():
    mu, lv = product_of_experts([torch.full((1, 2), 2.0)], [torch.zeros(1, 2)])
    torch.testing.assert_close(mu, torch.ones(1, 2))  # equal precisions: halfway to the prior's 0
    torch.testing.assert_close(lv, torch.full((1, 2), -torch.log(torch.tensor(2.0)).item()))


@pytest.mark.parametrize(("mus", "lvs", "prior"), [([], [], False), ([], [], True), ([torch.zeros(1, 2)], [], True)])
def test_poe_errors(mus, lvs, prior):
    with pytest.raises(ValueError):
        product_of_experts(mus, lvs, include_prior=prior)


def test_kl_zero_for_standard_normal():
    assert kl_to_standard_normal(torch.zeros(3, 5), torch.zeros(3, 5)).abs().max() == 0


def test_image_decoder_shape():
    dec = ImageDecoder(16, 3, (128, 64, 32, 16, 8)).eval()
    assert dec(torch.randn(2, 16)).shape == (2, 3, 256, 256)
    assert dec.output_size == 256


@pytest.mark.parametrize("subset", [["2d"], ["3d"], ["rgb"], ["depth"], ["2d", "rgb"], ["2d", "3d", "rgb", "depth"]])
def test_hand_pose_model_any_subset(subset):
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "3d", "rgb", "depth"], image_size=64)
    model = HandPoseModel(cfg).eval()
    data = {"2d": torch.randn(3, 21, 2), "3d": torch.randn(3, 21, 3), "rgb": torch.randn(3, 3, 64, 64),
            "depth": torch.randn(3, 1, 64, 64)}  # fmt: skip
    out = model({k: data[k] for k in subset}, n_samples=5)
    assert out.joints.shape == (3, 21, 3) and out.joint_std.shape == (3, 21)
    assert (out.joint_std > 0).all()
    # more experts -> tighter posterior (precision adds)
    solo = model({subset[0]: data[subset[0]]})
    if len(subset) > 1:
        assert (out.logvar <= solo.logvar + 1e-6).all()


def test_model_deterministic_noise_and_errors():
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32)).eval()
    x = {"2d": torch.randn(2, 21, 2)}
    noise = torch.randn(4, 2, 8)
    torch.testing.assert_close(model(x, noise=noise).joint_std, model(x, noise=noise).joint_std)
    assert model(x).joint_std.abs().max() == 0
    with pytest.raises(KeyError):
        model({"rgb": torch.randn(2, 3, 64, 64)})
    with pytest.raises(ValueError):
        model({})
    with pytest.raises(ValueError):
        HandPoseModel(ModelConfig(decoders=["2d"]))
