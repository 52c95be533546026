"""Command-line options made from the settings models, so that a setting is written once.

A setting is one field of a pydantic model (``runtime_config``): its YAML key, type, default, range and meaning.
A field that the command line may set also carries a :class:`Flag` in its annotation,
``Annotated[int | None, Flag("--width", "frame width (pixels)")]``; :func:`with_options` turns every such field
into a typer option of the command and hands the command ``{dotted key: (option, value)}`` for the options the
user gave (``None`` where not given), which ``cli._build_config`` lays over the YAML file and validates once,
reporting an invalid value by its option's name.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Flag:
    """The command-line option of a settings field."""

    name: str  #: ``--width``
    help: str = ""
    #: a ``bool`` field's option is a switch that sets this value (``True``: ``--mirror``; ``False``: ``--no-smooth``);
    #: its :attr:`opposite` sets the other
    switch: bool | None = None
    #: text -> the field's value (``--modalities 2d,world`` -> a list); may raise ``ValueError`` (one line)
    parse: Callable[[str], Any] | None = None

    @property
    def param(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    @property
    def opposite(self) -> str:
        """A switch's other side, which sets the field back where a config file changed it: ``--mirror`` ->
        ``--no-mirror``, ``--no-smooth`` -> ``--smooth``."""
        return "--" + self.name[5:] if self.name.startswith("--no-") else "--no-" + self.name[2:]


def flagged_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Flag, FieldInfo]]:
    """``(dotted key, flag, field)`` for every field of ``model`` and its nested models that has a flag."""
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from flagged_fields(sub, f"{prefix}{name}.")
            continue
        flag = next((m for m in info.metadata if isinstance(m, Flag)), None)
        if flag is not None:
            yield f"{prefix}{name}", flag, info


def _cli_type(annotation: Any) -> tuple[type, tuple[str, ...]]:
    """The type the command line reads for a field (``int``, ``float`` or ``str``) and a Literal's choices."""
    inner = annotation
    if typing.get_origin(annotation) is not Literal:
        inner = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    if typing.get_origin(inner) is Literal:
        return str, tuple(str(c) for c in typing.get_args(inner))
    return (inner if inner in (int, float) else str), ()


def _help(flag: Flag, info: FieldInfo) -> str:
    """The flag's help, with a Literal's choices and the field's default where the help does not say them."""
    _, choices = _cli_type(info.annotation)
    text = flag.help or (info.description or "")
    if choices and not flag.help:
        text = " | ".join(choices)
    default = info.get_default(call_default_factory=True)
    if flag.switch is None and default not in (None, [], ()) and "default" not in text:
        text += f" (default {default})"
    if flag.switch is not None:  # the pair's other side, e.g. where a --config file turned the setting over
        text += f" ({flag.opposite} undoes it)"
    return text.strip()


def option_parameters(model: type[BaseModel]) -> list[tuple[str, Flag, inspect.Parameter]]:
    """One keyword parameter, annotated with its ``typer.Option``, per flagged field of ``model``."""
    import typer

    out = []
    for dotted, flag, info in flagged_fields(model):
        if flag.switch is not None:  # both sides: None where neither is given (the file's value, or the default)
            opt = typer.Option(f"{flag.name}/{flag.opposite}", help=_help(flag, info))
            ann, default = Annotated[bool | None, opt], None
        else:
            kind, _ = _cli_type(info.annotation)
            ann, default = Annotated[kind | None, typer.Option(flag.name, help=_help(flag, info))], None
        out.append((dotted, flag, inspect.Parameter(flag.param, inspect.Parameter.KEYWORD_ONLY, default=default,
                                                    annotation=ann)))  # fmt: skip
    return out


def with_options(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command whose ``overrides`` parameter receives ``{dotted key: (option, value)}``; the command's
    other parameters stay its own options, after the generated ones. A ``parse`` that fails is one line, exit 2."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        import typer

        generated = option_parameters(model)
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(fn, eval_str=True).parameters.values()
            if p.name != "overrides"
        ]
        clash = {p.name for _, _, p in generated} & {p.name for p in own}
        if clash:
            raise TypeError(f"{fn.__name__}: options {sorted(clash)} are declared twice")

        def command(**kwargs: Any) -> Any:
            overrides: dict[str, tuple[str, Any]] = {}
            for dotted, flag, param in generated:
                value = kwargs.pop(param.name)
                if flag.switch is not None:
                    value = None if value is None else (flag.switch if value else not flag.switch)
                elif value is not None and flag.parse is not None:
                    try:
                        value = flag.parse(value)
                    except ValueError as e:
                        typer.echo(f"error: {e}", err=True)
                        raise typer.Exit(2) from None
                overrides[dotted] = (flag.name, value)
            return fn(overrides=overrides, **kwargs)

        command.__name__, command.__qualname__, command.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        command.__module__ = fn.__module__
        command.__signature__ = inspect.Signature([p for _, _, p in generated] + own)  # type: ignore[attr-defined]
        return command

    return decorate
