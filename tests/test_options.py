"""`streamhand run`'s options are made from the settings model: every flagged field is an option, an option's value
lands in its field, and a bad value is one line naming the option (exit 2), generated from each field's type and
range."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Literal

import pytest
import typer
import yaml
from annotated_types import Ge, Gt, Le, Lt

from streamhand.cli import _build_config
from streamhand.options import flagged_fields, with_options
from streamhand.runtime_config import RunConfig
from tests.conftest import free_port
from tests.helpers import invoke

FIELDS = list(flagged_fields(RunConfig))
#: values a pattern or a pair of fields constrains, beyond what the type says
SPECIAL = {"publish.connect": "tcp://127.0.0.1:5999", "model.modalities": "2d,world",
           "publish.curve_server_key": "s.key_secret", "publish.curve_allowed": "clients",
           "model.engine_dir": "docs"}  # fmt: skip
PAIRED = {"publish.curve_server_key": "publish.curve_allowed", "publish.curve_allowed": "publish.curve_server_key"}


def _bounds(info) -> tuple[float | None, float | None, bool]:
    lo = hi = None
    strict = False
    for m in info.metadata:
        if isinstance(m, Ge | Gt):
            lo, strict = (m.ge, False) if isinstance(m, Ge) else (m.gt, True)
        if isinstance(m, Le | Lt):
            hi = m.le if isinstance(m, Le) else m.lt
    return lo, hi, strict


def _base(annotation):
    if typing.get_origin(annotation) is Literal:
        return annotation
    return next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)


def _good(dotted: str, info) -> tuple[list[str], object]:
    """Command-line words that set the field to something other than its default, and the value expected."""
    flag = next(f for d, f, _ in FIELDS if d == dotted)
    if flag.switch is not None:
        return [flag.name], flag.switch
    if dotted in SPECIAL:
        text = SPECIAL[dotted]
        return [flag.name, text], flag.parse(text) if flag.parse else text
    base = _base(info.annotation)
    if typing.get_origin(base) is Literal:
        choice = [c for c in typing.get_args(base) if c != info.default][-1]
        return [flag.name, choice], choice
    if base in (int, float):
        lo, hi, _ = _bounds(info)
        lo = 0 if lo is None else lo
        value = base((lo + hi) / 2) if hi is not None else base(lo + 1)
        if value == info.default:
            value = base(value + 1)
        if dotted == "publish.control_port":
            value = 6001
        return [flag.name, str(base(value))], base(value)
    return [flag.name, "some-value"], "some-value"


def _bad(info) -> list[str]:
    """Values the option must refuse: wrong type, and each side of its range."""
    base = _base(info.annotation)
    if base not in (int, float):
        return []
    lo, hi, strict = _bounds(info)
    bad = ["abc", "1e999x", "", "1.5" if base is int else "nan"]
    if lo is not None:
        bad.append(str(base(lo) if strict else base(lo - 1)))
    if hi is not None:
        bad.append(str(base(hi + 1)))
    return bad


probe = typer.Typer()
seen: dict = {}


@probe.command()
@with_options(RunConfig)
def capture(overrides: dict) -> None:
    seen["cfg"] = _build_config(None, overrides)


@probe.command()
@with_options(RunConfig)
def from_file(overrides: dict, config: Annotated[Path, typer.Option()]) -> None:
    seen["cfg"] = _build_config(config, overrides)


@probe.command()
def other() -> None:  # a second command keeps typer from folding the app into its only command
    pass


def _value(cfg: RunConfig, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def test_every_flagged_field_is_a_run_option():
    helptext = invoke("run", "--help", env={"COLUMNS": "200"}).stdout
    for _, flag, _ in FIELDS:
        assert flag.name in helptext, flag.name
    assert len(FIELDS) >= 35


@pytest.mark.parametrize("dotted", [d for d, _, _ in FIELDS])
def test_option_sets_its_field(dotted):
    info = next(i for d, _, i in FIELDS if d == dotted)
    words, expected = _good(dotted, info)
    if dotted in PAIRED:
        other_words, _ = _good(PAIRED[dotted], next(i for d, _, i in FIELDS if d == PAIRED[dotted]))
        words += other_words
    seen.clear()
    r = invoke("capture", *words, app=probe)
    assert r.returncode == 0, r.stderr
    value = seen["cfg"]
    for part in dotted.split("."):
        value = getattr(value, part)
    assert value == expected, (dotted, value, expected)


SWITCHES = [(d, f) for d, f, _ in FIELDS if f.switch is not None]


@pytest.mark.parametrize(("dotted", "flag"), SWITCHES, ids=[d for d, _ in SWITCHES])
def test_a_switch_and_its_other_side_override_the_config_file(tmp_path, dotted, flag):
    """A config file that turns a switch's setting over (`realtime: false`) can be turned back on the command line
    (`--realtime`); neither side given keeps the file's value."""
    import yaml

    doc: dict = {}
    *path, last = dotted.split(".")
    d = doc
    for part in path:
        d = d.setdefault(part, {})
    d[last] = flag.switch
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    for words, want in [([], flag.switch), ([flag.opposite], not flag.switch), ([flag.name], flag.switch)]:
        seen.clear()
        r = invoke("from-file", "--config", str(tmp_path / "c.yaml"), *words, app=probe)
        assert r.returncode == 0, r.stderr
        assert _value(seen["cfg"], dotted) is want, (words, dotted)
    assert len(SWITCHES) >= 6


@pytest.mark.parametrize(
    ("text", "dotted", "want"),
    [("source: {kind: camera, camera: 0}", "source.camera", "0"),  # YAML's number: the camera's index
     ("source: {camera: /dev/video2}", "source.camera", "/dev/video2"),
     ("model: {modalities: '2d, world'}", "model.modalities", ["2d", "world"]),  # as the option writes it
     ("model: {modalities: [2d, world]}", "model.modalities", ["2d", "world"])],
)  # fmt: skip
def test_a_config_file_takes_what_the_option_takes(tmp_path, text, dotted, want):
    (tmp_path / "c.yaml").write_text(text)
    seen.clear()
    r = invoke("from-file", "--config", str(tmp_path / "c.yaml"), app=probe)
    assert r.returncode == 0, r.stderr
    assert _value(seen["cfg"], dotted) == want


NUMERIC = [(d, f, i, v) for d, f, i in FIELDS for v in _bad(i)]


@pytest.mark.parametrize(("dotted", "value"), [(d, v) for d, _, _, v in NUMERIC])
def test_bad_number_is_one_line_naming_the_option(dotted, value):
    flag = next(f for d, f, _ in FIELDS if d == dotted)
    r = invoke("run", flag.name, value)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert flag.name in r.stderr, r.stderr


def test_numeric_options_have_five_bad_values_each():
    counts = {}
    for d, _, _, _ in NUMERIC:
        counts[d] = counts.get(d, 0) + 1
    assert counts and all(n >= 5 for n in counts.values()), counts


def test_the_example_config_holds_the_defaults():
    """configs/runtime.yaml says it holds `streamhand run`'s defaults: every value it sets is the default."""
    import yaml

    from tests.helpers import ROOT

    data = yaml.safe_load((ROOT / "configs" / "runtime.yaml").read_text())
    defaults = RunConfig().model_dump()
    differ = [f"{section}.{k}: {v!r} (default {defaults[section][k]!r})"
              for section, values in data.items() for k, v in values.items() if defaults[section][k] != v]  # fmt: skip
    assert not differ


def test_print_config_gives_back_a_file_that_makes_the_same_settings(tmp_path):
    """`run --print-config` prints every setting (the options' on the defaults) as a file `--config` takes back to
    the same settings; each option's key is marked with the option."""
    r = invoke("run", "--print-config", "--port", "6101", "--no-realtime", "--modalities", "2d", "--fov", "70")
    assert r.returncode == 0, r.stderr
    (tmp_path / "all.yaml").write_text(r.stdout)
    assert "  port: 6101  # --port" in r.stdout and "  realtime: false  # --no-realtime" in r.stdout
    seen.clear()
    back = invoke("from-file", "--config", str(tmp_path / "all.yaml"), app=probe)
    assert back.returncode == 0, back.stderr
    want = RunConfig.model_validate({"source": {"realtime": False, "fov_deg": 70}, "model": {"modalities": ["2d"]},
                                     "publish": {"port": 6101}})  # fmt: skip
    assert seen["cfg"] == want
    for _, flag, _ in FIELDS:
        assert f"# {flag.name}\n" in r.stdout, flag.name


@pytest.mark.parametrize(
    ("source", "options", "kind"),
    [("realsense_file: r.db3", [], "realsense"), ("video: a.mp4", [], "video"), ("images: d/", [], "images"),
     ("camera: 1", [], "camera"), ("realsense_serial: '123'", [], "realsense"), ("fov_deg: 70", [], "demo"),
     ("kind: demo\n  camera: '0'", [], "demo"), ("camera: 1\n  video: a.mp4", ["--source", "camera"], "camera"),
     ("kind: demo\n  video: a.mp4", ["--source", "video"], "video"),  # the option settles the file's mismatch
     ("video: a.mp4", ["--camera", "1"], "camera")],
)  # fmt: skip
def test_a_files_source_setting_names_its_source_as_its_option_does(tmp_path, source, options, kind):
    """`source: {realsense_file: r.db3}` in a file played the demo: the option picks its source, the key did not. An
    option's source wins over the file's settings."""
    (tmp_path / "c.yaml").write_text(f"source:\n  {source}\n")
    r = invoke("run", "--config", str(tmp_path / "c.yaml"), *options, "--print-config")
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["source"]["kind"] == kind


@pytest.mark.parametrize(("source", "says"), [
    ("kind: demo\n  video: a.mp4", "source.kind is demo, but source.video (a video setting) is set too; set kind: "
                                    "video, or remove video"),
    ("kind: video\n  video: a.mp4\n  realsense_file: r.bag", "source.kind is video, but source.realsense_file"),
    ("kind: images\n  camera: 2", "source.kind is images, but source.camera (a camera setting)"),
])  # fmt: skip
def test_a_files_kind_and_another_sources_setting_are_one_line(tmp_path, source, says):
    """An edited --print-config dump keeps `kind: demo`: a `video:` set beside it ran the demo without a word."""
    (tmp_path / "c.yaml").write_text(f"source:\n  {source}\n")
    r = invoke("run", "--config", str(tmp_path / "c.yaml"), "--frames", "1", "--no-realtime", "--port",
               str(free_port()), "--control-port", str(free_port()))  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr


def test_two_sources_settings_without_a_kind_are_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text("source:\n  video: a.mp4\n  images: d/\n")
    r = invoke("run", "--config", str(tmp_path / "c.yaml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "c.yaml: source: video, images set: the settings of 2 sources; choose one source" in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"source:\n  kind: demo\n  kind: camera\n", "at line 3, column 3 (the key 'kind' is written twice)"),
     (b"source: [1, 2\n", "not valid YAML at line 2, column 1 (expected ',' or ']'"),
     (b"source:\n  kind: d\xe9mo\n", "not a UTF-8 text file"),
     (b"# only a comment\n", "the file sets nothing (streamhand run --print-config shows every setting)"),
     (b"publish:\n  port: true\n", "c.yaml: publish: port: true is an on/off value, which port is not"),
     (b"source:\n  fps: yes\n", "source: fps: true is an on/off value"),
     (b"model:\n  modalities: []\n", "model.modalities: modalities '': name at least one of 2d, world"),
     (b"false\n", "expected a mapping at the top level (key: value lines), not bool"),
     (b"[]\n", "expected a mapping at the top level (key: value lines), not list"),
     (b"port: 6000\n", "unknown key 'port' (did you mean 'publish.port'?)")],
    ids=["key-twice", "unclosed", "latin-1", "empty", "bool-port", "bool-fps", "no-modalities", "false", "empty-list",
         "port-elsewhere"],
)  # fmt: skip
def test_a_bad_config_file_is_one_line_saying_where(tmp_path, content, says):
    (tmp_path / "c.yaml").write_bytes(content)
    r = invoke("run", "--config", str(tmp_path / "c.yaml"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert says in r.stderr, r.stderr
