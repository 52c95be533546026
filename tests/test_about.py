"""`streamhand info` (streamhand/tools/about.py) with a shipped model's card that cannot be read."""

from __future__ import annotations

import shutil

from streamhand import model_files
from tests.helpers import invoke


def test_a_damaged_model_card_is_said_and_info_goes_on(tmp_path, monkeypatch):
    """A model card cut short (``streamhand/weights/<name>.json``: a disk that filled, an edit) made `streamhand info`
    fail with JSONDecodeError, as "failed unexpectedly", and none of what it knows was printed. The shipped models
    are read here from a copy of the weights folder, the depth model's card cut in half."""
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("default", "depth"):
        (weights / f"{name}.pt").symlink_to(model_files.WEIGHTS_DIR / f"{name}.pt")
        shutil.copy(model_files.WEIGHTS_DIR / f"{name}.json", weights)
    card = (weights / "depth.json").read_text()
    (weights / "depth.json").write_text(card[: len(card) // 2])
    (weights / "list.pt").touch()
    (weights / "list.json").write_text("[1, 2]")  # JSON, but not a card
    monkeypatch.setattr(model_files, "WEIGHTS_DIR", weights)
    r = invoke("info")
    assert r.returncode == 0, r.stderr[-1500:]
    lines = r.stdout.splitlines()
    said = [x for x in lines if "cannot be read" in x]
    assert said == [f"model 'depth': its model card {weights / 'depth.json'} cannot be read (JSONDecodeError: "
                    + said[0].split("(JSONDecodeError: ", 1)[1],
                    f"model 'list': its model card {weights / 'list.json'} cannot be read (ValueError: a JSON list, "
                    "not an object)"], said  # fmt: skip
    assert any(x.startswith("model 'default' (sh-") for x in lines)  # the cards after it are printed as ever
    assert lines[-1].startswith("model 'list'")
