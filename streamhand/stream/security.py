"""CurveZMQ for the stream and the control socket: key pairs, the server side (every socket encrypted, only
clients whose public keys are in an allowed folder may connect) and the client side.

Certificates are ZeroMQ's own text files (``zmq.auth``): ``NAME.key`` holds the public key, ``NAME.key_secret``
both. ``streamhand keys`` writes a pair; the server is given its ``.key_secret`` and a folder of allowed
clients' ``.key`` files, a client its own ``.key_secret`` and the server's ``.key``."""

from __future__ import annotations

import logging
from pathlib import Path

import zmq

log = logging.getLogger(__name__)


class SecurityError(ValueError):
    """An unusable key or key folder (one line, naming the file)."""


def make_keys(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``name.key`` and ``name.key_secret`` into ``out_dir``; refuses to overwrite a pair."""
    import zmq.auth

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise SecurityError(f"--name {name!r}: use a plain file name")
    out = Path(out_dir)
    if (out / f"{name}.key_secret").exists() or (out / f"{name}.key").exists():
        raise SecurityError(f"{out / name}.key(_secret) exists; choose another --name or folder")
    out.mkdir(parents=True, exist_ok=True)
    pub, sec = zmq.auth.create_certificates(str(out), name)
    Path(sec).chmod(0o600)
    return Path(pub), Path(sec)


def _load(path: str | Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    p = Path(path)
    if not p.is_file():
        raise SecurityError(f"key file not found: {p}")
    try:
        public, secret = zmq.auth.load_certificate(str(p))
    except (ValueError, OSError, UnicodeDecodeError, KeyError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SecurityError(f"{p}: not a ZeroMQ certificate ({why})") from None
    if need_secret and not secret:
        raise SecurityError(f"{p}: holds no secret key (give the .key_secret file)")
    return public, secret


class CurveServer:
    """The server side for one ZeroMQ context: its key pair and the allowed clients (checked by a ZAP thread)."""

    def __init__(self, secret_file: str | Path, allowed_dir: str | Path, ctx: zmq.Context):
        from zmq.auth.thread import ThreadAuthenticator

        self.public, self.secret = _load(secret_file, need_secret=True)
        allowed = Path(allowed_dir)
        if not allowed.is_dir():
            raise SecurityError(f"--curve-allowed: not a folder: {allowed}")
        n = len(list(allowed.glob("*.key")))
        if n == 0:
            raise SecurityError(f"--curve-allowed: no client public keys (*.key) in {allowed}")
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("streamhand.auth"))
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(allowed))
        log.info("CurveZMQ on: %d allowed client key(s) in %s", n, allowed)

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
