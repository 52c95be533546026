"""The import graph of the package, read from the source (every import, function-level ones included): no loops
between modules or between sub-packages, the runtime never imports the build steps (exporting, converting,
engine building) except where a run prepares a missing artifact at first use, and never the training code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the only runtime modules that may start a build step (a missing ONNX graph or converted network, at first use)
MAY_IMPORT_BUILD_STEPS = {"streamhand.app", "streamhand.tools.bench", "streamhand.cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for top in ("streamhand", "train"):
        for p in (ROOT / top).rglob("*.py"):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = p
    return out


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    pkg = m.split(".")[: -node.level + (1 if p.name == "__init__.py" else 0) or None]
                    base = ".".join([*pkg, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                k = known(t)
                if k is not None and k != m:
                    edges[m].add(k)
    return edges


EDGES = _edges(_modules())


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One loop in the graph, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                return [*path[path.index(w) :], w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(edges):
        if v not in state and (found := visit(v)):
            return found
    return None


def _package(m: str) -> str:
    return ".".join(m.split(".")[:2])


def test_no_module_imports_itself_back():
    assert _cycle(EDGES) is None, " -> ".join(_cycle(EDGES) or [])


def test_no_loop_between_sub_packages():
    pkg: dict[str, set[str]] = {}
    for m, ts in EDGES.items():
        pkg.setdefault(_package(m), set()).update(_package(t) for t in ts if _package(t) != _package(m))
    assert _cycle(pkg) is None, " -> ".join(_cycle(pkg) or [])


@pytest.mark.parametrize(
    ("rule", "importer", "imported"),
    [
        ("the runtime never imports training code", "streamhand.", "train."),
        ("only a run's builder and the tools start a build step", "streamhand.", "streamhand.export."),
        (
            "the detector does not reach into the model's backends (shared runners are in gpu/)",
            "streamhand.detect.",
            "streamhand.infer.",
        ),
    ],
)
def test_layers(rule, importer, imported):
    bad = sorted(
        f"{m} -> {t}"
        for m, ts in EDGES.items()
        for t in ts
        if m.startswith(importer) and t.startswith(imported) and not f"{m}.".startswith(imported)
        and m not in MAY_IMPORT_BUILD_STEPS
    )  # fmt: skip
    assert not bad, f"{rule}: " + ", ".join(bad)


def test_the_graph_is_read():  # the checks above are only as good as the edges they see
    assert "streamhand.infer.onnxruntime_backend" in EDGES["streamhand.infer.select"]  # a function-level import
    assert "streamhand.export.onnx_export" in EDGES["streamhand.app"]
    assert "train.datasets.pairs" in EDGES["train.datasets.synthetic"]
