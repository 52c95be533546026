"""The latent space, shown: walks start and end at the encoded hands, embeddings put one hand's experts
together (the shipped model's latent space is shared across modalities), the commands write their PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamhand.checkpoint import load_checkpoint
from tests.helpers import train_cli
from train.latent import _inputs, embed, latent_walk


def test_walk_starts_and_ends_at_the_encoded_hands(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint).model
    walk = latent_walk(model, "2d", steps=5, seed=3)
    assert walk["joints"].shape == (5, 21, 3) and walk["t"][0] == 0 and walk["t"][-1] == 1
    x = _inputs(2, 3, ("2d",))["2d"]
    with torch.no_grad():
        ends = model({"2d": x}).joints.numpy()
    np.testing.assert_allclose(walk["joints"][[0, -1]], ends, atol=1e-5)
    mid = 0.5 * (walk["z"][0] + walk["z"][-1])
    np.testing.assert_allclose(walk["z"][2], mid, atol=1e-6)


@pytest.mark.parametrize(
    ("modality", "steps", "message"),
    [("rgb", 4, "--modality 'rgb': the model has no such encoder"), ("2d", 1, "at least 2")],
)
def test_walk_refuses_what_it_cannot_do(tiny_checkpoint, modality, steps, message):
    with pytest.raises(ValueError, match=message):
        latent_walk(load_checkpoint(tiny_checkpoint).model, modality, steps)


def test_shipped_model_puts_one_hands_experts_together():
    emb = embed(load_checkpoint().model, n=100, seed=1)
    assert emb["xy"].shape == (300, 2) and sorted(set(emb["labels"])) == ["2d", "3d", "world"]
    assert emb["same_hand"] < 0.7 * emb["other_hand"]


@pytest.mark.parametrize("command", ["latent-walk", "embed"])
def test_commands_write_pngs(tiny_checkpoint, tmp_path, command):
    out = tmp_path / f"{command}.png"
    r = train_cli(command, "--checkpoint", str(tiny_checkpoint), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x89PNG" and str(out) in r.stdout


def test_walk_command_names_a_missing_encoder(tiny_checkpoint, tmp_path):
    r = train_cli("latent-walk", "--checkpoint", str(tiny_checkpoint), "--modality", "world",
                  "--out", str(tmp_path / "w.png"))  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--modality 'world': the model has no such encoder" in r.stderr
