"""``streamhand record`` and ``streamhand replay``: the stream to an MCAP file and back
(:mod:`streamhand.stream.recording`).

Registered on the ``streamhand`` command line by :mod:`streamhand.cli`; same conventions (one line and exit 2 for
bad input, exit 0 on a clean stop, exit 1 where `record` gave up waiting).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from streamhand.errors import check_output_or_fail, fail
from streamhand.outputs import OutputUnfinished
from streamhand.stop_signals import on_stop_signals
from streamhand.stream import protocol

MAX_WAIT_S = protocol.MAX_WAIT_S  # the longest --timeout or --duration (0 is "never" where it says so)


def number_in(low: float, high: float | None, unit: str) -> Callable[[str], float]:
    """An option's parser: a finite number from ``low`` to ``high`` (None: no upper bound), else one line naming the
    range (a range check alone takes NaN for a number too large)."""
    def num(v: float) -> str:
        return f"{v:.0f}" if v == int(v) else f"{v:g}"

    span = f"from {num(low)} to {num(high)}" if high is not None else f"{num(low)} or more"

    def parse(text: str | float) -> float:
        try:
            value = float(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= (math.inf if high is None else high)):
            raise typer.BadParameter(f"{text} is not a number of {unit} {span}")
        return value

    return parse


#: ``--timeout`` of the commands that wait for messages
IdleTimeout = Annotated[
    float, typer.Option(parser=number_in(0, MAX_WAIT_S, "seconds"),
                        help="give up after this many idle seconds (0: never; at most 1000000)")
]


def record(
    out: Annotated[Path, typer.Argument(help="the recording to write (.mcap)")],
    address: Annotated[str | None, typer.Option(help="PUB endpoint (default tcp://127.0.0.1:5560)")] = None,
    control: Annotated[str | None, typer.Option(help="control endpoint: ask it for the PUB port")] = None,
    topic: Annotated[list[str] | None, typer.Option(help="topic prefix (repeatable); default: all")] = None,
    duration: Annotated[
        float | None, typer.Option(parser=number_in(0.001, MAX_WAIT_S, "seconds"), help="stop after this many seconds")
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="stop after N messages")] = None,
    timeout: IdleTimeout = 30.0,
    curve_server_key: Annotated[Path | None, typer.Option(help="CurveZMQ: the server's .key")] = None,
    curve_client_key: Annotated[Path | None, typer.Option(help="CurveZMQ: this client's .key_secret")] = None,
) -> None:
    """Record the stream to an MCAP file (every message as received, with its topic, receive time and schema).

    Stops on Ctrl-C, SIGTERM, --duration, --count or --timeout seconds without a message; what was received is
    always kept (the file appears under its name when it is complete)."""
    from streamhand.stream.client import PoseSubscriber
    from streamhand.stream.recording import McapRecorder
    from streamhand.stream.security import SecurityError

    if out.suffix.lower() != ".mcap":
        fail(f"OUT {str(out)!r}: a recording is an .mcap file; give a name ending in .mcap")
    check_output_or_fail(out, "OUT")
    try:
        keys = {"curve_server_key": _opt(curve_server_key), "curve_client_key": _opt(curve_client_key)}
        sub = PoseSubscriber(address, topics=tuple(topic or [""]), timeout=0.1, control=control, raw=True,
                             control_timeout=timeout or None, **keys)  # fmt: skip
    except TimeoutError as e:
        fail(f"{e}: is `streamhand run` running where --control points? (--timeout 0 waits for ever)", 1)
    except (SecurityError, ValueError) as e:
        fail(str(e))
    stop = threading.Event()
    on_stop_signals(stop.set)
    rec = McapRecorder(out, source=sub.address)
    typer.echo(f"recording {', '.join(topic) if topic else 'all topics'} from {sub.address} to {out} "
               "(Ctrl-C stops)", err=True)  # fmt: skip
    t_start = t_last = time.monotonic()
    why = "stopped"
    try:
        while not stop.is_set():
            now = time.monotonic()
            if duration is not None and now - t_start >= duration:
                why = f"{duration:g} s"
                break
            if timeout and now - t_last >= timeout:
                why = f"nothing for {timeout:g} s"
                break
            try:
                m = sub.recv()
            except TimeoutError:
                continue
            t_last = time.monotonic()
            try:
                rec.write(m.topic, m.payload, m.data.get("seq", 0))
            except OutputUnfinished as e:  # the disk full: where what was recorded stays, and exit 1
                fail(str(e), 1)
            if count is not None and rec.count >= count:
                why = f"{count} messages"
                break
    finally:
        sub.close()
        idle = rec.count == 0  # nothing arrived: no recording (a file of that name is left as it was)
        if idle:
            rec.discard()
        try:
            path = rec.close()
        except OutputUnfinished as e:  # its end not written, or its name not taken: where it stays, and exit 1
            fail(str(e), 1)
    if idle and why.startswith("nothing"):  # gave up waiting: a failure
        fail(f"nothing arrived from {sub.address} in {timeout:g} s, so no recording was written; is `streamhand run` "
             "publishing there?", 1)  # fmt: skip
    if idle:  # stopped as asked (--duration, --count, Ctrl-C) with nothing to keep: said, and no empty file
        on = f" on {', '.join(topic)}" if topic else ""
        typer.echo(f"nothing arrived from {sub.address}{on} before it stopped ({why}), so no recording was written",
                   err=True)  # fmt: skip
        return
    typer.echo(f"recorded {rec.count} messages to {path} ({why})", err=True)


def replay(
    file: Annotated[Path, typer.Argument(help="a recording made by `streamhand record` or `run --save X.mcap`")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="PUB port")] = protocol.DEFAULT_PUB_PORT,
    control_port: Annotated[int, typer.Option(min=1, max=65535, help="control (REP) port")] = (
        protocol.DEFAULT_CONTROL_PORT
    ),
    bind: Annotated[str, typer.Option(help="address to bind both ports")] = "127.0.0.1",
    speed: Annotated[str, typer.Option(help="1: the recorded pace; N: N times faster; max: as fast as possible")] = "1",
    loop: Annotated[bool, typer.Option("--loop", help="start again at the end, until stopped")] = False,
    delay: Annotated[
        float, typer.Option(parser=number_in(0, 3600, "seconds"),
                            help="seconds before the first message (subscribers connect; at most 3600)")
    ] = 1.0,
) -> None:
    """Republish a recording: the same bytes on the same topics, at the recorded pace (or faster), with a control
    socket like `run`'s (PUB_PORT, t, stats, stop)."""
    from streamhand.stream.publish import PortInUse, Publisher
    from streamhand.stream.recording import RecordingError, ReplayClock, check_recording, describe, parse_speed
    from streamhand.stream.recording import replay as play

    try:
        factor = parse_speed(speed)
        info = check_recording(file)
    except (ValueError, RecordingError) as e:
        fail(str(e))
    if port == control_port:
        fail("--port and --control-port must differ")
    stop = threading.Event()
    progress = {"messages": 0, "of": info.messages}
    clock = ReplayClock(factor)  # `t`: the recorded run's clock, as the replayed t_capture reads
    try:
        pub = Publisher(bind, port, control_port, sndhwm=100_000, stats=lambda: dict(progress),
                        config=lambda: {"file": str(file), "speed": speed, "loop": loop}, on_stop=stop.set,
                        clock=clock)  # fmt: skip
    except PortInUse as e:
        fail(str(e))
    on_stop_signals(stop.set)
    typer.echo(f"replaying {file}: {describe(info)}; on {protocol.tcp_endpoint(bind, port)} (control {control_port}) "
               f"at {'max speed' if factor is None else f'{factor:g}x'}{', looping' if loop else ''} (Ctrl-C stops)",
               err=True)  # fmt: skip
    try:
        if stop.wait(delay):
            return
        sent = play(file, pub.send_raw, factor, loop, stop.is_set, lambda n: progress.__setitem__("messages", n),
                    clock)  # fmt: skip
        time.sleep(0.2)  # let the last messages leave before the socket closes
    finally:
        pub.close()
    typer.echo(f"replayed {sent} messages" + (f" ({pub.dropped} dropped by slow subscribers)" if pub.dropped else ""),
               err=True)  # fmt: skip


def _opt(p: Path | None) -> str | None:
    return None if p is None else str(p)
