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
from typing import TYPE_CHECKING, Annotated

import typer

from streamhand.errors import check_output_or_fail, fail
from streamhand.outputs import OutputUnfinished, made_folders
from streamhand.stop_signals import on_stop_signals
from streamhand.stream import protocol

if TYPE_CHECKING:  # imported where used: the command line starts without them
    import zmq

    from streamhand.stream.publish import Publisher

MAX_WAIT_S = protocol.MAX_WAIT_S  # the longest --timeout or --duration (0 is "never" where it says so)
#: how long a replay that ran to its end waits, at most, for its connected subscribers to take what it queued for them
#: (seconds; one that stopped reading holds it no longer); a stopped replay waits the publisher's usual 0.5 s
REPLAY_FLUSH_S = 10.0


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
    missed: dict[str, int] = {}  # topic (and camera, where the message names one) -> messages missed, by seq gaps
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
                try:
                    m = sub.recv()
                except TimeoutError:
                    rec.keep_up()  # the last messages go to the file while none come (a kill loses at most ~1 s)
                    continue
                t_last = time.monotonic()
                rec.write(m.topic, m.payload, m.data.get("seq", 0))
            except OutputUnfinished as e:  # the disk full: where what was recorded stays, and exit 1
                fail(str(e), 1)
            if m.gap:
                missed[_stream_of(m.topic, m.data)] = missed.get(_stream_of(m.topic, m.data), 0) + m.gap
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
        made_folders(failed=True)  # no file: the folders made for it go too (they are empty)
        return
    typer.echo(f"recorded {rec.count} messages to {path} ({why}); {_missed(missed)}", err=True)


def _stream_of(topic: str, msg: dict) -> str:
    """A message's stream, as ``seq`` counts it: its topic, and its camera where it names one."""
    cam = msg.get("camera")
    cam_id = str(cam.get("id", ""))[:64] if isinstance(cam, dict) else ""
    return f"{topic} (camera {cam_id})" if cam_id else topic


def _missed(missed: dict[str, int]) -> str:
    """What a recording missed on the way, by the gaps in each stream's ``seq`` (a publisher that dropped them for a
    slow subscriber, or a network that lost them)."""
    total = sum(missed.values())
    if not total:
        return "none missed on the way (no gap in any topic's seq)"
    worst = sorted(missed.items(), key=lambda kv: -kv[1])
    each = ", ".join(f"{n} of {stream}" for stream, n in worst[:5]) + (", ..." if len(worst) > 5 else "")
    return f"{total} missed on the way (gaps in seq: {each})"


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
    import zmq

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
    progress = _Progress(info.messages)
    clock = ReplayClock(factor)  # `t`: the recorded run's clock, as the replayed t_capture reads
    ctx = zmq.Context()  # its own, so that ending it waits for what is queued to leave (the shared one never ends)
    try:
        pub = Publisher(bind, port, control_port, sndhwm=100_000, stats=progress.stats,
                        config=lambda: {"file": str(file), "speed": speed, "loop": loop}, on_stop=stop.set,
                        clock=clock, context=ctx)  # fmt: skip
    except PortInUse as e:
        ctx.destroy(linger=0)
        fail(str(e))
    on_stop_signals(stop.set)
    from streamhand.stream.security import warn_if_open  # run's and proxy's own warning

    warn_if_open(bind, "the stream and the control socket (whose `stop` ends this replay) are")
    typer.echo(f"replaying {file}: {describe(info)}; on {protocol.tcp_endpoint(bind, port)} (control {control_port}) "
               f"at {'max speed' if factor is None else f'{factor:g}x'}{', looping' if loop else ''} (Ctrl-C stops)",
               err=True)  # fmt: skip
    if info.cut_short:
        typer.echo(f"warning: {file} was cut short after {info.messages} messages (its recorder did not finish it: "
                   "killed, or the disk full); replaying those", err=True)  # fmt: skip
    sent, flush_s = 0, None
    try:
        if not stop.wait(delay):
            sent = play(file, pub.send_raw, factor, loop, stop.is_set, progress.sent, clock)
        flush_s = None if stop.is_set() else REPLAY_FLUSH_S  # stopped: the usual short wait
    finally:
        flushed = _close_waiting(pub, ctx, flush_s)
        # a stop (Ctrl-C) during that wait cuts it short: the end of the queue is then not known to have gone
        cut = flush_s is not None and stop.is_set()
    ending = "" if sent or not stop.is_set() else " (stopped before the first)"
    typer.echo(f"replayed {sent} messages{progress.passes(sent)}{ending}" + (
        "; stopped while its subscribers were still taking the last of them, so they may not all have reached them"
        if cut else "" if flushed else f"; a subscriber had not taken the last of them {flush_s:g} s after they "
        "were sent (it stopped reading?), so they may not all have reached it"), err=True)  # fmt: skip


class _Progress:
    """A replay's ``stats``: ``messages`` sent of this pass through the file, ``of`` its messages, ``pass`` (1, 2, ...
    with --loop) and ``sent`` in all."""

    def __init__(self, of: int):
        self.of, self.total = of, 0

    def sent(self, n: int) -> None:
        self.total = n

    def stats(self) -> dict:
        done, into = divmod(self.total, self.of) if self.of else (0, self.total)
        if into == 0 and done:  # the last message of a pass sent: that pass, whole
            done, into = done - 1, self.of
        return {"messages": into, "of": self.of, "pass": done + 1, "sent": self.total}

    def passes(self, sent: int) -> str:
        """`` (N passes ...)`` where a looping replay went through the file more than once; else nothing."""
        if not self.of or sent <= self.of:
            return ""
        whole, more = divmod(sent, self.of)
        return f" ({whole} passes through its {self.of}" + (f" and {more} more)" if more else ")")


def _close_waiting(pub: Publisher, ctx: zmq.Context, flush_s: float | None) -> bool:
    """Close the publisher and end its context, which waits until what is queued has gone to the connected
    subscribers, ``flush_s`` at most (None: the publisher's usual wait); whether it all went before that bound."""
    t0 = time.monotonic()  # the PUB socket's linger starts within close(): ending the context past it is the bound
    if flush_s is None:
        pub.close()
    else:
        pub.close(flush_ms=int(flush_s * 1000))
    ctx.destroy(linger=0)  # any socket still open closes at once; the PUB socket's own linger is waited out
    return flush_s is None or time.monotonic() - t0 < flush_s


def _opt(p: Path | None) -> str | None:
    return None if p is None else str(p)
