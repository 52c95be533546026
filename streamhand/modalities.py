"""The modalities, in one place: what a model's experts read, which of them a run may feed, the fixed order
they enter the product of experts, and the one rule that settles a run's set from the model, the source and
the user's request (with a one-line error naming what is missing).

Imports nothing but the standard library, so every layer (configs, backends, exporters, training) can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

#: every modality a model may encode; ``3d`` is the training-only pose encoder
Modality = Literal["2d", "world", "3d", "rgb", "depth", "cloud"]
#: the modalities a run can feed (the detector's 2D and world landmarks, the RGB crop, the depth crop and its cloud)
InputModality = Literal["2d", "world", "rgb", "depth", "cloud"]
#: the order experts enter the product (fixed, so that every backend and the exported graphs fuse alike)
ORDER: tuple[str, ...] = ("2d", "world", "rgb", "depth", "cloud", "3d")
INPUTS: tuple[str, ...] = tuple(m for m in ORDER if m != "3d")
#: the inputs only a source with depth can give
NEEDS_DEPTH: frozenset[str] = frozenset({"depth", "cloud"})


class ModalityError(ValueError):
    """A modality request that the model or the source cannot serve (the message is one line for the user)."""


def ordered(modalities: Iterable[str]) -> tuple[str, ...]:
    """The run-time modalities in :data:`INPUTS` order; an unknown one raises :class:`ModalityError`."""
    mods = set(modalities)
    unknown = sorted(mods - set(INPUTS))
    if unknown:
        raise ModalityError(f"no runtime input for modalities {unknown}; choose from {', '.join(INPUTS)}")
    return tuple(m for m in INPUTS if m in mods)


def key(modalities: Iterable[str]) -> str:
    """The name of a set, e.g. ``2d+world`` (the joint_std calibration and exported files use it)."""
    mods = set(modalities)
    return "+".join(m for m in ORDER if m in mods)


def parse(text: str | None, option: str = "--modalities") -> list[str] | None:
    """``"2d, world"`` -> ``["2d", "world"]``; None -> None (all the model and source support); blank, or an
    unknown name -> one-line error (a blank once meant "all" without a word, where an empty list did the same)."""
    if text is None:
        return None
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ModalityError(f"{option} {text!r}: name at least one of {', '.join(INPUTS)} (or leave it out for all "
                            "that the model and source support)")  # fmt: skip
    bad = [m for m in names if m not in INPUTS]
    if bad:
        raise ModalityError(f"{option} {','.join(bad)}: choose from {', '.join(INPUTS)}")
    return names


def has_expert(encoders: Sequence[str], modalities: Iterable[str]) -> bool:
    """Whether a model with ``encoders`` gives at least one expert for these inputs (a joint encoder's second
    input alone gives none)."""
    mods = set(modalities)
    return any(m in encoders for m in mods) or ({"rgb", "cloud"} <= mods and "rgb+cloud" in encoders)


def settle(encoders: Sequence[str], wanted: Sequence[str] | None, has_depth: bool, source: str) -> tuple[str, ...]:
    """The experts a run fuses. ``encoders``: the model's; ``wanted``: the user's request (None: every input the
    model has and the source gives). A requested modality the model lacks, or a depth modality from a source
    without depth, is a :class:`ModalityError` naming it."""
    have = [m for m in encoders if m in INPUTS or m == "rgb+cloud"]
    inputs = {m for e in have for m in e.split("+")}
    if wanted:
        missing = [m for m in wanted if m not in inputs]
        if missing:
            raise ModalityError(f"--modalities {','.join(missing)}: the model has no {' or '.join(missing)} expert "
                                f"(it reads {', '.join(ordered(inputs))}); choose another --model")  # fmt: skip
        no_depth = [m for m in wanted if m in NEEDS_DEPTH and not has_depth]
        if no_depth:
            hint = ("make the HandTracker with_depth=True and give each frame's depth" if source == "frames" else
                    "use --realsense or --source demo")  # fmt: skip
            raise ModalityError(f"--modalities {','.join(no_depth)}: the {source} source has no depth ({hint})")
        mods = ordered(wanted)
    else:
        mods = ordered(m for m in inputs if has_depth or m not in NEEDS_DEPTH)
    if not mods or not has_expert(have, mods):
        raise ModalityError(f"no usable modality: the model reads {', '.join(ordered(inputs)) or 'nothing'}, "
                            f"which the {source} source cannot give")  # fmt: skip
    return mods
