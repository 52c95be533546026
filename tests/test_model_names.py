"""Shipped models by name: ``--model default`` (and every ``streamhand/weights/<name>.pt``), a path that exists
wins over a name, an unknown name lists the names, and ``streamhand info`` lists them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from streamhand.checkpoint import DEFAULT_WEIGHTS, CheckpointError, load_checkpoint, resolve_model, shipped_models
from streamhand.cli import app
from streamhand.synth.render import RENDER_VERSION


def test_names_and_paths(tmp_path, monkeypatch, tiny_checkpoint):
    assert shipped_models()["default"] == DEFAULT_WEIGHTS
    assert resolve_model(None) == resolve_model("default") == DEFAULT_WEIGHTS
    assert load_checkpoint("default").model_id == load_checkpoint().model_id
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").write_bytes(tiny_checkpoint.read_bytes())  # a file called "default" here wins
    assert load_checkpoint("default").model_id == load_checkpoint(tiny_checkpoint).model_id
    with pytest.raises(CheckpointError, match=r"checkpoint not found: nosuch \(shipped models by name: default"):
        resolve_model("nosuch")


def test_info_lists_the_shipped_models():
    r = CliRunner().invoke(app, ["info"])
    assert r.exit_code == 0 and "model 'default' (sh-" in r.output and "backend (auto)" in r.output
    report = next(s for s in r.output.splitlines() if s.strip().startswith("synth_report"))
    assert "MediaPipe detection rate 0." in report and report.endswith(f"renderer {RENDER_VERSION}")


def test_every_shipped_card_holds_its_checkpoints_figures_measured_on_the_current_renderer():
    """`info` shows the cards: a renderer change (or a re-measure) that leaves a card behind fails here."""
    import json

    import torch

    for name, pt in shipped_models().items():
        card = json.loads(pt.with_suffix(".json").read_text())
        assert card["metrics"] == torch.load(pt, map_location="cpu", weights_only=True)["metrics"], name
        assert card["metrics"]["synth_report"]["renderer"] == RENDER_VERSION, name
