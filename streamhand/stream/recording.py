"""Recording the stream to MCAP and playing it back.

A recording holds every message as it arrived: its topic as the channel, the msgpack payload byte for byte
(channel ``message_encoding`` ``msgpack``), the receive time (``log_time``, ns since the Unix epoch), the message's
own ``seq`` as MCAP's sequence number, and per channel our JSON Schema of that topic's map (schema encoding
``jsonschema``, from :mod:`streamhand.stream.schema`). The header's profile is ``streamhand``; a metadata record
``streamhand`` says where it was recorded from. Rerun, Foxglove and the ``mcap`` CLI open it as it is.

:class:`McapRecorder` writes (``NAME.mcap`` to the hidden ``.NAME.PID.part.mcap``, renamed when it finishes, so a
file at the final name is always complete; its chunks go to the file at least every :data:`FLUSH_EVERY_S`, so a
writer killed outright loses about that much); :func:`check_recording` reads a file through once and names, in one
line, what is wrong with it (not MCAP, damaged, not ours), or that it was cut short (its readable messages still
play); :func:`replay` republishes the same bytes on the same topics at the recorded pace, N times faster or as fast
as possible.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import msgspec

from streamhand.outputs import OutputUnfinished, cut_short, finish_part, part_path
from streamhand.stream import protocol

PROFILE = "streamhand"
MESSAGE_ENCODING = "msgpack"
#: the longest a recorded message waits in memory (the chunk being built) before it is written to the file, seconds:
#: what a recorder killed outright (SIGKILL, the power cut) loses at most, besides what the system had not written
FLUSH_EVERY_S = 1.0


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

    def __init__(self, path: str | Path, source: str = "", chunk_size: int = 256 * 1024, option: str = "OUT",
                 flush_s: float = FLUSH_EVERY_S):  # fmt: skip
        """``flush_s``: how long a message may wait in the chunk being built before the chunk is written out."""
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
        self.flush_s = flush_s
        self._unwritten_since: float | None = None  # when the oldest message not yet written to the file came

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
        if self._unwritten_since is None:
            self._unwritten_since = time.monotonic()
        self.keep_up()

    def keep_up(self) -> None:
        """Write the chunk being built to the file where its oldest message has waited :attr:`flush_s` (call it also
        while no message comes, so that the last ones do not wait for the next); :class:`OutputUnfinished` as
        :meth:`write`."""
        if self.closed or self._unwritten_since is None or time.monotonic() - self._unwritten_since < self.flush_s:
            return
        try:
            self._writer.flush()  # the chunk being built finished and written, the file flushed
        except OSError as e:
            raise self._cut_short(e) from None
        self._unwritten_since = None

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
        return cut_short(self._file, self.option, self.path, e,
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
    #: the file ends early (its writer killed, the disk full): ``messages`` are those it holds whole, and they play
    cut_short: bool = False

    @property
    def seconds(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e9


def _records(path: Path) -> Iterator:
    from mcap.stream_reader import StreamReader

    with open(path, "rb") as f:
        yield from StreamReader(f, record_size_limit=1 << 28, validate_crcs=True).records  # damage said, not played


def _whole_records(path: Path) -> Iterator:
    """:func:`_records` up to where the file is cut short (a record whose end is missing): those before it."""
    try:
        yield from _records(path)
    except Exception as e:  # mcap's EndOfFile, or what struct says of bytes missing
        if not _end_missing(e):
            raise


def _end_missing(e: BaseException) -> bool:
    """Whether reading the file failed because it ends within a record: cut short there (anything else is bytes that
    are not what they claim)."""
    from mcap.exceptions import EndOfFile

    return isinstance(e, (EndOfFile, EOFError, struct.error))


def check_recording(path: str | Path) -> RecordingInfo:
    """Read the whole file once: a :class:`RecordingInfo` (``cut_short`` where the file ends early: its readable
    messages counted), or :class:`RecordingError` in one line."""
    from mcap.records import Channel, Footer, Header, Message, Metadata

    p = Path(path)
    if p.is_dir():
        raise RecordingError(f"{p}: a folder, not a recording (.mcap)")
    if not p.is_file():
        raise RecordingError(f"{p}: no such file")
    try:
        if p.stat().st_size == 0:
            raise RecordingError(f"{p}: an empty file (0 bytes), not a recording")
    except OSError as e:
        raise RecordingError(f"{p}: cannot read it ({e.strerror or e})") from None
    info, channels, header, footer = RecordingInfo(), {}, None, False
    try:
        for rec in _records(p):
            if isinstance(rec, Header):
                header = rec
                if header.profile != PROFILE:  # said before any of its messages, which are not ours to read
                    raise RecordingError(f"{p}: an MCAP file, but not a streamhand recording (profile "
                                         f"{header.profile!r})")  # fmt: skip
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
    except OSError as e:
        raise RecordingError(f"{p}: cannot read it ({e.strerror or e})") from None
    except Exception as e:  # bytes that do not read as MCAP records (mcap's errors, struct's, a length past any size)
        if header is None:
            from mcap.writer import MCAP0_MAGIC

            with open(p, "rb") as f:
                starts = f.read(len(MCAP0_MAGIC)) == MCAP0_MAGIC
            raise RecordingError(f"{p}: truncated before its first record" if starts else
                                 f"{p}: not an MCAP file (it does not start as one)") from None  # fmt: skip
        if not _end_missing(e):
            raise RecordingError(f"{p}: damaged after {info.messages} messages ({type(e).__name__})") from None
        info.cut_short = True
    if header is None:
        raise RecordingError(f"{p}: not an MCAP file")
    if not footer:
        info.cut_short = True  # it ends between two records, before the summary its writer adds last
    if info.cut_short and not info.messages:
        raise RecordingError(f"{p}: cut short before its first message (its writer stopped before writing any)")
    return info


def messages(path: str | Path) -> Iterator[tuple[str, bytes, int]]:
    """(topic, payload, log_time ns) of every message, in file order (check the file first); a file cut short gives
    those it holds whole."""
    from mcap.records import Channel, Message

    topics: dict[int, str] = {}
    for rec in _whole_records(Path(path)):
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
    ``ended`` (the recording ran out) or ``stopped`` (:class:`_Ending` says what it holds). The number sent (the
    closing statuses not counted)."""
    sent = 0
    endings: dict[str, _Ending] = {}  # camera id -> what its closing status is made of

    def end(state: str) -> int:
        for ending in endings.values():
            closing = ending.closing(state)
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
            _follow(endings, topic, payload)
            if clock is not None:
                clock.sent(topic, payload, t_ns)
            sent += 1
            if on_message is not None:
                on_message(sent)
        if not loop or stop():
            return end("stopped" if stop() else "ended")


#: how a run's last ``status`` says why its stream ends
_FINAL_STATES = ("ended", "stopped", "lost")


class _Frame(msgspec.Struct):
    """The fields of a replayed message that a closing status takes (the rest of the map is skipped unread)."""

    frame_id: int | None = None
    t_capture: float | None = None
    t_capture_unix: float | None = None
    t_publish: float | None = None
    camera: dict | None = None


_frame_fields = msgspec.msgpack.Decoder(_Frame)


@dataclass
class _Ending:
    """One camera's closing status, as its replayed stream goes: a copy of its last ``status`` whose common fields
    (``frame_id``, ``t_capture``, ``t_capture_unix``, ``camera``) are those of the last message of that camera sent
    (a ``status`` carries its latest frame's), ``t_publish`` the latest sent, ``uptime_s`` on by as much,
    ``frames_processed`` and ``hands_published`` on by the ``hand.frame`` and ``hand.pose.*`` messages sent after it
    (``frames_in`` at least ``frames_processed``); its other figures (``fps``, ``drops``, ``latency_ms``, ...) as
    that status said. ``seq`` is the next, ``source_state`` says why the stream ends."""

    status: dict | None = None
    last: _Frame | None = None  # the last message of this camera with the frame fields
    t_publish: float | None = None  # the latest sent
    frames: int = 0  # hand.frame messages sent since the last status
    hands: int = 0  # hand.pose.* messages sent since the last status

    def closing(self, state: str) -> bytes | None:
        """The closing status; None where the last status says the stream ends already, or none was sent."""
        msg = self.status
        if msg is None or str(msg.get("source_state", "")).startswith(_FINAL_STATES):
            return None
        msg = dict(msg)
        seq = msg.get("seq")
        msg["source_state"] = state
        msg["seq"] = seq + 1 if _is_int(seq) else seq
        last = self.last
        if last is not None:
            msg.update(frame_id=last.frame_id, t_capture=last.t_capture, t_capture_unix=last.t_capture_unix,
                       camera=last.camera)  # fmt: skip
        was = msg.get("t_publish")
        if self.t_publish is not None and _is_number(was) and self.t_publish > was:
            msg["t_publish"] = self.t_publish
            if _is_number(msg.get("uptime_s")):
                msg["uptime_s"] += self.t_publish - was
        for key, more in (("frames_processed", self.frames), ("hands_published", self.hands)):
            if _is_int(msg.get(key)):
                msg[key] += more
        if _is_int(msg.get("frames_in")) and _is_int(msg.get("frames_processed")):
            msg["frames_in"] = max(msg["frames_in"], msg["frames_processed"])
        return msgpack.packb(msg, use_bin_type=True)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _follow(endings: dict[str, _Ending], topic: str, payload: bytes) -> None:
    """Note a message sent for its camera's closing status (one that cannot be read is replayed as it is, and counts
    for nothing)."""
    try:
        m = _frame_fields.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    ending = endings.setdefault(str(m.camera.get("id", "")) if m.camera is not None else "", _Ending())
    if topic == protocol.TOPIC_STATUS:
        try:
            status = msgpack.unpackb(payload, raw=False)
        except Exception:  # msgspec read it: only a key that is not a string (not one of ours) ends here
            return
        ending.status, ending.frames, ending.hands = status, 0, 0
    elif topic == protocol.TOPIC_FRAME:
        ending.frames += 1
    elif topic.startswith(protocol.TOPIC_POSE + "."):
        ending.hands += 1
    if m.frame_id is not None:  # a message about a frame (not a log record's camera, which names its id alone)
        ending.last = m
    if m.t_publish is not None:
        ending.t_publish = m.t_publish if ending.t_publish is None else max(ending.t_publish, m.t_publish)


def describe(info: RecordingInfo) -> str:
    """One line about a recording."""
    poses = sum(n for t, n in info.topics.items() if t.startswith(protocol.TOPIC_POSE + "."))
    return (f"{info.messages} messages ({poses} poses) on {len(info.topics)} topics over {info.seconds:.1f} s"
            + (f" from {info.source}" if info.source else ""))  # fmt: skip

