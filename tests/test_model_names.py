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


def _edited(src, dst, edit):
    import torch

    data = torch.load(src, map_location="cpu", weights_only=True)
    edit(data)
    torch.save(data, dst)
    return dst


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: d["model_config"].update(new_knob=3),
         "model settings this streamhand (0.1.0) does not read (written by streamhand 0.1.0): new_knob: Extra inputs"),
        (lambda d: d["state_dict"].update(renamed=d["state_dict"].pop(next(iter(d["state_dict"])))),
         "its weights do not fit the network its settings describe (written by streamhand 0.1.0) (Missing key(s)"),
        (lambda d: d.update(format_version=2),
         "checkpoint format 2 (written by streamhand 0.1.0), and this streamhand (0.1.0) reads format 1: use the"),
    ],
)
def test_a_checkpoint_of_another_version_is_one_line_naming_it(edit, says, tiny_checkpoint, tmp_path):
    """Settings, weights or a format of another version: a pydantic dump, "failed unexpectedly" with a crash log
    (load_state_dict's RuntimeError) or a bare "format 2 != 1"; now one line naming what and who wrote it."""
    from streamhand.version import __version__

    bad = _edited(tiny_checkpoint, tmp_path / "other.pt", edit)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    assert says.replace("0.1.0", __version__) in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_an_error_model_another_version_fitted_is_refused_before_the_run(tmp_path):
    """A model whose error model this version cannot read ran until its first frame, then failed the run (or hours
    later, at the first frame judged by that set of experts); now refused as the run starts, in one line."""
    from tests.conftest import free_port
    from tests.helpers import invoke

    def rename_a_feature(d):
        spec = d["error_model"]["2d"]
        spec["features"] = ["old_feature", *spec["features"][1:]]

    bad = _edited(DEFAULT_WEIGHTS, tmp_path / "old.pt", rename_a_feature)
    r = invoke("run", "--source", "demo", "--frames", "3", "--no-realtime", "--backend", "torch", "--model", str(bad),
               "--port", str(free_port()), "--control-port", str(free_port()))  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and lines[-1].startswith(f"error: --model {bad}: its error model for 2d cannot be read"), (
        r.stderr[-1500:])  # fmt: skip
    assert "['old_feature'] are not among this version's" in lines[-1]
    assert f"python -m train fit-error-model --checkpoint {bad}`" in lines[-1]
