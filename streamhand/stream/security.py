"""CurveZMQ for the stream and the control socket: key pairs, the server side (every socket encrypted, only
clients whose public keys are in an allowed folder may connect) and the client side.

Certificates are ZeroMQ's own text files (``zmq.auth``): ``NAME.key`` holds the public key, ``NAME.key_secret``
both. ``streamhand keys`` writes a pair; the server is given its ``.key_secret`` and a folder of allowed
clients' ``.key`` files, a client its own ``.key_secret`` and the server's ``.key``."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import secrets
import time
from pathlib import Path

import zmq

log = logging.getLogger(__name__)


def warn_if_open(bind: str, what: str) -> None:
    """One warning where ``bind`` reaches beyond this machine: ``what`` (``... are``) is then open to the network
    without authentication (``run`` without CurveZMQ, ``proxy``, ``replay``)."""
    if bind not in ("127.0.0.1", "localhost", "::1"):
        log.warning("--bind %s: %s open to every machine that can reach this one, without authentication; bind "
                    "127.0.0.1 unless you need that, on a network you trust", bind, what)  # fmt: skip

_MAX_KEY_FILE = 64 * 1024  # a certificate is under 1 KiB; anything this big is something else
_Z85 = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
_PUBLIC_BANNER = (
    "#   ZeroMQ CURVE Public Certificate (written by streamhand keys on {when})\n"
    "#   Give it to the other side: a server's to its clients, a client's to the server's --curve-allowed folder.\n"
)
_SECRET_BANNER = (
    "#   ZeroMQ CURVE **Secret** Certificate (written by streamhand keys on {when})\n"
    "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
)


class SecurityError(ValueError):
    """An unusable key or key folder (one line, naming the file)."""


def _pair_name(name: str) -> str:
    """``name`` without a ``.key`` or ``.key_secret`` suffix; refuses anything but a plain file name."""
    base = name
    for suffix in (".key_secret", ".key"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    if not base or any(c in base for c in "/\\\0") or base.startswith("."):
        raise SecurityError(f"--name {name!r}: use a plain file name, e.g. server (for server.key, server.key_secret)")
    return base


def _certificate(public: bytes, secret: bytes | None) -> bytes:
    """The text of a ZeroMQ certificate, as ``zmq.auth.load_certificate`` reads it."""
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    lines = [(_SECRET_BANNER if secret else _PUBLIC_BANNER).format(when=when), "metadata", "curve",
             f'    public-key = "{public.decode()}"']  # fmt: skip
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return ("\n".join(lines) + "\n").encode()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (it must not exist) with ``mode`` from the start, write ``data`` and flush it to disk."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _move_into_place(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` too (a hard link; a rename where there are none), never replacing a file
    that appeared there meanwhile."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise SecurityError(f"{final} exists; choose another --name or folder") from None
    except OSError:  # a file system without hard links: check, then rename
        if final.exists() or final.is_symlink():
            raise SecurityError(f"{final} exists; choose another --name or folder") from None
        os.rename(tmp, final)


def make_keys(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``name.key`` (public) and ``name.key_secret`` (both keys, owner-only from its creation) into
    ``out_dir``, made if missing. A ``name`` ending in ``.key`` or ``.key_secret`` has that suffix taken off
    (``server.key`` writes ``server.key`` and ``server.key_secret``). Never overwrites a pair, and writes all or
    nothing: both files go under temporary names first and are renamed at the end; on a failure what was written
    (and any folder made) is removed and :class:`SecurityError` names the folder and the reason."""
    base = _pair_name(name)
    out = Path(out_dir)
    pub, sec = out / f"{base}.key", out / f"{base}.key_secret"
    if pub.exists() or sec.exists():
        raise SecurityError(f"{out / base}.key(_secret) exists; choose another --name or folder")
    if out.exists() and not out.is_dir():
        raise SecurityError(f"{out}: not a folder; give a folder for the key pair")
    public, secret = zmq.curve_keypair()
    tag = secrets.token_hex(4)
    tmp_pub, tmp_sec = out / f".{base}.key.{tag}.tmp", out / f".{base}.key_secret.{tag}.tmp"
    dirs: list[Path] = []  # the folders made here and the files written: removed on a failure
    files: list[Path] = []
    try:
        for d in reversed([d for d in (out, *out.parents) if not d.exists()]):
            d.mkdir()
            dirs.append(d)
        for path, data, mode in ((tmp_pub, _certificate(public, None), 0o644),
                                 (tmp_sec, _certificate(public, secret), 0o600)):  # fmt: skip
            _write_new(path, data, mode)
            files.append(path)
        for tmp, final in ((tmp_sec, sec), (tmp_pub, pub)):
            _move_into_place(tmp, final)
            files.append(final)
            tmp.unlink(missing_ok=True)
    except BaseException as e:
        for f in files:
            with contextlib.suppress(OSError):
                f.unlink(missing_ok=True)
        for d in reversed(dirs):
            with contextlib.suppress(OSError):  # a folder someone else has meanwhile written into stays
                d.rmdir()
        if isinstance(e, OSError):
            raise SecurityError(f"cannot write the key pair into {out}: {e.strerror or e}") from None
        raise
    return pub, sec


def _key(p: Path, value: bytes, which: str) -> bytes:
    """``value`` if it is a CURVE key (40 Z85 characters), else a :class:`SecurityError` naming ``p``."""
    if len(value) != 40 or not set(value) <= _Z85:
        raise SecurityError(f"{p}: not a ZeroMQ certificate (its {which} key is not 40 Z85 characters)")
    return value


def _load(path: str | Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    """The (public, secret) keys in the certificate ``path``: its secret too when ``need_secret`` (a
    ``.key_secret``), else the public key only (a ``.key``; a secret key there is refused, as it belongs to the
    other side). Every problem is a one-line :class:`SecurityError` naming the file."""
    import zmq.auth

    p = Path(path)
    if p.is_dir():
        raise SecurityError(f"{p}: a folder, not a key file")
    if not p.is_file():
        raise SecurityError(f"key file not found: {p}")
    try:
        with p.open("rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except OSError as e:
        raise SecurityError(f"{p}: cannot read it ({e.strerror or e})") from None
    if not data:
        raise SecurityError(f"{p}: empty; give a key file written by `streamhand keys`")
    if len(data) > _MAX_KEY_FILE:
        raise SecurityError(f"{p}: not a ZeroMQ certificate (over {_MAX_KEY_FILE} bytes; one is under 1 KiB)")
    try:
        public, secret = zmq.auth.load_certificate(str(p))
    except OSError as e:
        raise SecurityError(f"{p}: cannot read it ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError, KeyError, IndexError):
        raise SecurityError(f"{p}: not a ZeroMQ certificate (no public-key line)") from None
    public = _key(p, public, "public")
    if not need_secret:
        if secret:
            raise SecurityError(f"{p}: holds a secret key; give the public .key file (the secret stays with its owner)")
        return public, None
    if not secret:
        raise SecurityError(f"{p}: holds no secret key (give the .key_secret file)")
    if zmq.curve_public(_key(p, secret, "secret")) != public:
        raise SecurityError(f"{p}: its secret and public keys are not a pair; make a new one with `streamhand keys`")
    return public, secret


class CurveServer:
    """The server side for one ZeroMQ context: its key pair and the allowed clients (checked by a ZAP thread)."""

    def __init__(self, secret_file: str | Path, allowed_dir: str | Path, ctx: zmq.Context):
        from zmq.auth.thread import ThreadAuthenticator

        self.public, self.secret = _load(secret_file, need_secret=True)
        allowed = Path(allowed_dir)
        if not allowed.is_dir():
            raise SecurityError(f"--curve-allowed: not a folder: {allowed}")
        if any(c in str(allowed) for c in "*?["):  # the ZAP thread reads the folder as an unescaped glob pattern
            raise SecurityError(f"--curve-allowed {allowed}: a folder whose name holds [, ], * or ? reads as empty to "
                                "ZeroMQ's key loader (every client would be refused); rename it")  # fmt: skip
        clients = sorted(glob.glob(os.path.join(str(allowed), "*.key")))  # as the ZAP thread reads them
        if not clients:
            raise SecurityError(f"--curve-allowed: no client public keys (*.key) in {allowed}")
        for f in clients:  # one unreadable file would make the ZAP thread refuse every client
            _load(f, need_secret=False)
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("streamhand.auth"))
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(allowed))
        log.info("CurveZMQ on: %d allowed client key(s) in %s", len(clients), allowed)

    def apply(self, sock: zmq.Socket) -> None:
        """Make ``sock`` (before bind) a CURVE server with this key pair."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def stop(self) -> None:
        self._auth.stop()


def apply_client(sock: zmq.Socket, server_key_file: str | Path, client_secret_file: str | Path) -> None:
    """Make ``sock`` (before connect) a CURVE client of the server whose public key is in ``server_key_file``."""
    server_public, _ = _load(server_key_file, need_secret=False)
    public, secret = _load(client_secret_file, need_secret=True)
    sock.curve_serverkey = server_public
    sock.curve_publickey = public
    sock.curve_secretkey = secret
