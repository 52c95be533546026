"""Recording the stream to MCAP and playing it back.

A recording holds every message as it arrived: its topic as the channel, the msgpack payload byte for byte
(channel ``message_encoding`` ``msgpack``), the receive time (``log_time``, ns since the Unix epoch), the message's
own ``seq`` as MCAP's sequence number, and per channel our JSON Schema of that topic's map (schema encoding
``jsonschema``, from :mod:`streamhand.stream.schema`). The header's profile is ``streamhand``; a metadata record
``streamhand`` says where it was recorded from. Rerun, Foxglove and the ``mcap`` CLI open it as it is.

:class:`McapRecorder` writes (to ``OUT.mcap.PID.part``, renamed when it finishes, so a file at the final name is
always complete); :func:`check_recording` reads a file through once and names, in one line, what is wrong with
it (not MCAP, truncated, not ours); :func:`replay` republishes the same bytes on the same topics at the recorded
pace, N times faster or as fast as possible.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import msgspec

from streamhand.outputs import OutputUnfinished, finish_part, part_path
from streamhand.stream import protocol

PROFILE = "streamhand"
MESSAGE_ENCODING = "msgpack"


class RecordingError(ValueError):
    """A file that cannot be replayed; ``str(e)`` is one line."""


def _schema_for(topic: str) -> tuple[str, bytes]:
    """(name, JSON Schema) of a topic's maps; a topic that is not ours gets an empty schema."""
    cls = protocol.struct_for(topic)
    if cls is None:
        return "unknown", b"{}"
    return f"streamhand.{cls.__name__}", msgspec.json.encode(msgspec.json.schema(cls))


class McapRecorder:
    """Appends raw messages to an MCAP file; :meth:`close` finishes it (summary, index) and puts it in place."""

    def __init__(self, path: str | Path, source: str = "", chunk_size: int = 256 * 1024, option: str = "OUT"):
        from mcap.writer import Writer

        from streamhand.version import __version__

        self.path = Path(path)
        self.option = option  # what the path was given as, for the message where it cannot be finished
        self._part = part_path(self.path)  # two recorders: each a whole file
        self._file = open(self._part, "wb")  # noqa: SIM115 (closed in close())
        self._writer = Writer(self._file, chunk_size=chunk_size)
        self._writer.start(profile=PROFILE, library=f"streamhand {__version__}")
        self._writer.add_metadata(PROFILE, {"source": source, "started_unix": f"{time.time():.3f}",
                                            "schema": str(protocol.SCHEMA)})  # fmt: skip
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.count = 0
        self.closed = False

    def _channel(self, topic: str) -> int:
        cid = self._channels.get(topic)
        if cid is None:
            name, data = _schema_for(topic)
            sid = self._schemas.get(name)
            if sid is None:
                sid = self._schemas[name] = self._writer.register_schema(name, "jsonschema", data)
            cid = self._channels[topic] = self._writer.register_channel(topic, MESSAGE_ENCODING, sid)
        return cid

    def write(self, topic: str, payload: bytes, seq: int = 0, t_ns: int | None = None) -> None:
        """One message as received (``t_ns``: the receive time, now if not given); :class:`OutputUnfinished` where
        the file cannot take it (the disk full, a file-size limit), saying where what was written stays."""
        if self.closed:
            raise OutputUnfinished(f"{self.option} {self.path}: the recording is closed")
        t = time.time_ns() if t_ns is None else t_ns
        try:
            self._writer.add_message(self._channel(topic), log_time=t, data=bytes(payload), publish_time=t,
                                     sequence=max(int(seq), 0) & 0xFFFFFFFF)  # fmt: skip
        except OSError as e:
            raise self._cut_short(e) from None
        self.count += 1

    def close(self) -> Path:
        """Finish the file and move it to its name; safe to call twice."""
        if not self.closed:
            try:
                self._writer.finish()
            except OSError as e:
                raise self._cut_short(e) from None
            self.closed = True
            self._file.close()
            finish_part(self._part, self.path, self.option)
        return self.path

    def _cut_short(self, e: OSError) -> OutputUnfinished:
        """The file could not take more: closed as it is under its part name (without the index and summary
        :meth:`close` writes), and the error says where."""
        self.closed = True
        try:
            self._file.close()
        except OSError:  # what the buffer still held cannot be written either
            pass
        return OutputUnfinished(f"{self.option} {self.path}: could not be written ({e.strerror or type(e).__name__}); "
                                f"the {self.count} messages recorded are in {self._part}, its end cut short")

    def discard(self) -> None:
        """Close without keeping anything: no file at the name (one already there stays as it was)."""
        if not self.closed:
            self.closed = True
            self._file.close()
            self._part.unlink(missing_ok=True)


@dataclass
class RecordingInfo:
    """What :func:`check_recording` found."""

    messages: int = 0
    topics: dict[str, int] = field(default_factory=dict)  # topic -> messages
    start_ns: int = 0
    end_ns: int = 0
    source: str = ""

    @property
    def seconds(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e9


def _records(path: Path) -> Iterator:
    from mcap.stream_reader import StreamReader

    with open(path, "rb") as f:
        yield from StreamReader(f, record_size_limit=1 << 28).records


def check_recording(path: str | Path) -> RecordingInfo:
    """Read the whole file once: a :class:`RecordingInfo`, or :class:`RecordingError` in one line."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Footer, Header, Message, Metadata

    p = Path(path)
    if p.is_dir():
        raise RecordingError(f"{p}: a folder, not a recording (.mcap)")
    if not p.is_file():
        raise RecordingError(f"{p}: no such file")
    info, channels, header, footer = RecordingInfo(), {}, None, False
    try:
        for rec in _records(p):
            if isinstance(rec, Header):
                header = rec
            elif isinstance(rec, Channel):
                channels[rec.id] = rec
            elif isinstance(rec, Message):
                topic = channels[rec.channel_id].topic if rec.channel_id in channels else None
                if topic is None or channels[rec.channel_id].message_encoding != MESSAGE_ENCODING:
                    raise RecordingError(f"{p}: a message on a channel that is not a streamhand topic")
                info.topics[topic] = info.topics.get(topic, 0) + 1
                info.messages += 1
                info.start_ns = rec.log_time if info.messages == 1 else min(info.start_ns, rec.log_time)
                info.end_ns = max(info.end_ns, rec.log_time)
            elif isinstance(rec, Metadata) and rec.name == PROFILE:
                info.source = rec.metadata.get("source", "")
            elif isinstance(rec, Footer):
                footer = True
    except RecordingError:
        raise
    except (McapError, EOFError, struct.error, ValueError, KeyError) as e:
        if header is None:
            from mcap.writer import MCAP0_MAGIC

            with open(p, "rb") as f:
                starts = f.read(len(MCAP0_MAGIC)) == MCAP0_MAGIC
            raise RecordingError(f"{p}: truncated before its first record" if starts else
                                 f"{p}: not an MCAP file (it does not start as one)") from None  # fmt: skip
        raise RecordingError(f"{p}: truncated or damaged after {info.messages} messages ({type(e).__name__})") from None
    except OSError as e:
        raise RecordingError(f"{p}: cannot read it ({e.strerror or e})") from None
    if header is None:
        raise RecordingError(f"{p}: not an MCAP file")
    if header.profile != PROFILE:
        raise RecordingError(f"{p}: an MCAP file, but not a streamhand recording (profile {header.profile!r})")
    if not footer:
        raise RecordingError(f"{p}: truncated after {info.messages} messages (no footer)")
    return info


def messages(path: str | Path) -> Iterator[tuple[str, bytes, int]]:
    """(topic, payload, log_time ns) of every message, in file order (check the file first)."""
    from mcap.records import Channel, Message

    topics: dict[int, str] = {}
    for rec in _records(Path(path)):
        if isinstance(rec, Channel):
            topics[rec.id] = rec.topic
        elif isinstance(rec, Message):
            yield topics[rec.channel_id], rec.data, rec.log_time


#: the slowest and fastest replay factors (a slower one would wait days between messages: no replay at all)
SPEED_RANGE = (0.001, 1e6)


def parse_speed(text: str) -> float | None:
    """``--speed``: ``max`` (None: as fast as possible) or a factor > 0 (1: the recorded pace)."""
    if text.strip().lower() == "max":
        return None
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"--speed {text!r}: give a factor such as 1 or 4, or max") from None
    if not SPEED_RANGE[0] <= v <= SPEED_RANGE[1]:
        raise ValueError(f"--speed {text!r}: the factor must be from {SPEED_RANGE[0]:g} to {SPEED_RANGE[1]:g} (or max)")
    return v


class ReplayClock:
    """The clock the replayed messages' ``t_capture`` was read on, now, as a replay goes (what ``t`` on a replay's
    control socket answers, as on a run's): the recorded time of the last message sent, on from then at the replay's
    ``speed`` (None: as fast as possible, held at the last message's), in the recorded run's monotonic seconds (its
    messages' ``t_capture_unix - t_capture`` gives the offset). None until a message with both times was sent."""

    def __init__(self, speed: float | None):
        self.speed = speed
        self._anchor: tuple[float, float] | None = None  # (this process's monotonic s, the recording's unix s)
        self._offset: float | None = None  # the recorded run's unix minus its monotonic clock, seconds

    def sent(self, topic: str, payload: bytes, t_ns: int) -> None:
        self._anchor = (time.monotonic(), t_ns / 1e9)
        if self._offset is None:
            try:
                m = protocol.decode([topic.encode(), payload])[1]
                self._offset = float(m["t_capture_unix"]) - float(m["t_capture"])
            except (protocol.MalformedMessage, KeyError, TypeError, ValueError):
                pass

    def __call__(self) -> float | None:
        if self._anchor is None or self._offset is None:
            return None
        wall, rec = self._anchor
        ahead = 0.0 if self.speed is None else (time.monotonic() - wall) * self.speed
        return rec + ahead - self._offset


def replay(
    path: str | Path,
    send: Callable[[str, bytes], None],
    speed: float | None = 1.0,
    loop: bool = False,
    stop: Callable[[], bool] = lambda: False,
    on_message: Callable[[int], None] | None = None,
    clock: ReplayClock | None = None,
) -> int:
    """Send every message of a checked recording through ``send(topic, payload)`` at the recorded pace divided by
    ``speed`` (None: no waiting); with ``loop``, again from the start until ``stop()``; ``clock`` follows what is
    sent. Each camera's stream ends as a run's does: where its last ``status`` sent does not say so, one more says
    ``ended`` (the recording ran out) or ``stopped``. The number sent."""
    sent = 0
    last_status: dict[str, bytes] = {}  # camera id -> its last status sent

    def end(state: str) -> int:
        for payload in last_status.values():
            closing = _closing_status(payload, state)
            if closing is not None:
                send(protocol.TOPIC_STATUS, closing)
        return sent

    while True:
        t0_wall, t0_rec = time.monotonic(), None
        for topic, payload, t_ns in messages(path):
            if stop():
                return end("stopped")
            if speed is not None:
                t0_rec = t_ns if t0_rec is None else t0_rec
                due = t0_wall + (t_ns - t0_rec) / 1e9 / speed
                while (wait := due - time.monotonic()) > 0:
                    if stop():
                        return end("stopped")
                    time.sleep(min(wait, 0.05))
            send(topic, payload)
            if topic == protocol.TOPIC_STATUS:
                last_status[_camera_of(payload)] = payload
            if clock is not None:
                clock.sent(topic, payload, t_ns)
            sent += 1
            if on_message is not None:
                on_message(sent)
        if not loop or stop():
            return end("stopped" if stop() else "ended")


#: how a run's last ``status`` says why its stream ends
_FINAL_STATES = ("ended", "stopped", "lost")


def _camera_of(payload: bytes) -> str:
    try:
        cam = msgpack.unpackb(payload, raw=False).get("camera")
    except Exception:  # a malformed message is replayed as it is; it ends no stream
        return ""
    return str(cam.get("id", "")) if isinstance(cam, dict) else ""


def _closing_status(payload: bytes, state: str) -> bytes | None:
    """A copy of a recorded ``status`` that says the stream ends (``source_state`` ``state``, the next ``seq``); None
    where the recorded one says so already, or cannot be read."""
    try:
        msg = msgpack.unpackb(payload, raw=False)
    except Exception:
        return None
    if not isinstance(msg, dict) or str(msg.get("source_state", "")).startswith(_FINAL_STATES):
        return None
    seq = msg.get("seq")
    msg["source_state"] = state
    msg["seq"] = seq + 1 if isinstance(seq, int) and not isinstance(seq, bool) else seq
    return msgpack.packb(msg, use_bin_type=True)


def describe(info: RecordingInfo) -> str:
    """One line about a recording."""
    poses = sum(n for t, n in info.topics.items() if t.startswith(protocol.TOPIC_POSE + "."))
    return (f"{info.messages} messages ({poses} poses) on {len(info.topics)} topics over {info.seconds:.1f} s"
            + (f" from {info.source}" if info.source else ""))  # fmt: skip

