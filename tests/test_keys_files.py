"""Key pair files: written all or nothing (a full disk leaves nothing behind), the secret owner-only from its
creation, ``--name`` with a ``.key`` suffix, and every unusable key file a one-line error naming it."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest
import zmq

from streamhand.stream import security
from streamhand.stream.security import CurveServer, SecurityError, apply_client, make_keys
from tests.helpers import ROOT, invoke


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_keys_on_a_full_disk_leave_nothing_and_a_rerun_works(tmp_path, monkeypatch):
    writes = []
    real_write = os.write

    def full_after_first_file(fd: int, data) -> int:
        writes.append(fd)
        if len(writes) > 1:  # the first file (one write) fits, the second does not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    out = tmp_path / "k"
    with monkeypatch.context() as m:
        m.setattr(security.os, "write", full_after_first_file)
        r = invoke("keys", "--out", str(out), "--name", "server")
    assert r.returncode == 2, r.stderr
    assert len(writes) == 2  # one file written, the other refused
    assert r.stderr.strip() == f"error: cannot write the key pair into {out}: No space left on device"
    assert _files(out) == []  # neither the pair nor a temporary file
    r = invoke("keys", "--out", str(out), "--name", "server")
    assert r.returncode == 0, r.stderr
    assert _files(out) == ["server.key", "server.key_secret"]


def test_a_failed_write_removes_the_folder_it_made(tmp_path, monkeypatch):
    def broken(tmp, final) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(security, "_move_into_place", broken)
    with pytest.raises(SecurityError, match=r"cannot write the key pair into .*new/keys: I/O error$"):
        make_keys(tmp_path / "new" / "keys", "server")
    assert _files(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_keys_past_a_file_size_limit_are_all_or_nothing(tmp_path):
    """A real OS refusal, in a process of its own: each file may grow only so far, the public file fits, the
    secret one (longer) does not."""
    import resource

    ref = make_keys(tmp_path / "ref", "server")
    small, large = sorted(p.stat().st_size for p in ref)
    assert small < large
    limit = (small + large) // 2

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "k"
    r = subprocess.run([sys.executable, "-m", "streamhand.cli", "keys", "--out", str(out), "--name", "server"],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT), preexec_fn=limited)  # fmt: skip
    assert r.returncode == 2, r.stderr[-1500:]
    assert r.stderr.strip().splitlines() == [f"error: cannot write the key pair into {out}: File too large"]
    assert _files(out) == []
    r = invoke("keys", "--out", str(out), "--name", "server")
    assert r.returncode == 0 and _files(out) == ["server.key", "server.key_secret"]


def test_the_secret_file_is_owner_only_from_its_creation(tmp_path, monkeypatch):
    """No chmod afterwards (there is a moment before it when others could read the file): the mode it is
    created with is already owner-only."""
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    old = os.umask(0o022)
    try:
        pub, sec = make_keys(tmp_path, "server")
    finally:
        os.umask(old)
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644


@pytest.mark.parametrize("name", ["x", "x.key", "x.key_secret"])
def test_a_key_suffix_in_the_name_is_taken_off(tmp_path, name):
    r = invoke("keys", "--out", str(tmp_path), "--name", name)
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path) == ["x.key", "x.key_secret"]
    assert f"{tmp_path / 'x.key'} " in r.stdout


@pytest.mark.parametrize("name", [".key", ".key_secret", "", "a/b", ".hidden", "a\0b"])
def test_names_that_are_not_plain_file_names_are_refused(tmp_path, name):
    with pytest.raises(SecurityError, match="use a plain file name"):
        make_keys(tmp_path, name)
    assert _files(tmp_path) == []


def test_an_existing_pair_is_never_overwritten_whatever_the_suffix(tmp_path):
    _, sec = make_keys(tmp_path, "server")
    before = sec.read_bytes()
    for name in ("server", "server.key", "server.key_secret"):
        with pytest.raises(SecurityError, match="exists; choose another --name"):
            make_keys(tmp_path, name)
    assert sec.read_bytes() == before and _files(tmp_path) == ["server.key", "server.key_secret"]


@pytest.fixture
def files(tmp_path):
    make_keys(tmp_path, "server")
    make_keys(tmp_path, "alice")
    make_keys(tmp_path, "bob")
    (tmp_path / "empty.key").write_bytes(b"")
    (tmp_path / "blank.key").write_bytes(b"\n\n")
    (tmp_path / "garbage.key").write_bytes(b"\x00\xff\xfe not a certificate\n" * 10)
    (tmp_path / "folder.key").mkdir()
    (tmp_path / "short.key").write_text('curve\n    public-key = "abc"\n')
    (tmp_path / "short.key_secret").write_text('curve\n    public-key = "abc"\n    secret-key = "def"\n')
    alice_public = (tmp_path / "alice.key").read_text()
    bob_secret = (tmp_path / "bob.key_secret").read_text()
    mixed = bob_secret.split("public-key")[0] + "public-key" + alice_public.split("public-key")[1]
    (tmp_path / "mixed.key_secret").write_text(mixed + bob_secret[bob_secret.index("    secret-key") :])
    (tmp_path / "huge.key").write_bytes(b"#" * 100_000)
    return tmp_path


@pytest.mark.parametrize(
    ("server_key", "client_key", "bad", "message"),
    [
        ("nope.key", "alice.key_secret", "nope.key", "key file not found"),
        ("empty.key", "alice.key_secret", "empty.key", "empty; give a key file written by `streamhand keys`"),
        ("server.key", "empty.key", "empty.key", "empty; give a key file"),
        ("blank.key", "alice.key_secret", "blank.key", r"not a ZeroMQ certificate \(no public-key line\)"),
        ("server.key", "alice.key", "alice.key", r"holds no secret key \(give the .key_secret file\)"),
        ("server.key_secret", "alice.key_secret", "server.key_secret", "holds a secret key; give the public .key"),
        ("garbage.key", "alice.key_secret", "garbage.key", "not a ZeroMQ certificate"),
        ("server.key", "garbage.key", "garbage.key", "not a ZeroMQ certificate"),
        ("folder.key", "alice.key_secret", "folder.key", "a folder, not a key file"),
        ("short.key", "alice.key_secret", "short.key", "public key is not 40 Z85 characters"),
        ("server.key", "short.key_secret", "short.key_secret", "public key is not 40 Z85 characters"),
        ("server.key", "mixed.key_secret", "mixed.key_secret", "secret and public keys are not a pair"),
        ("huge.key", "alice.key_secret", "huge.key", "over 65536 bytes"),
    ],
)
def test_unusable_key_files_are_one_line_errors_naming_the_file(files, server_key, client_key, bad, message):
    sock = zmq.Context.instance().socket(zmq.SUB)
    try:
        with pytest.raises(SecurityError, match=message) as e:
            apply_client(sock, files / server_key, files / client_key)
    finally:
        sock.close(0)
    assert len(str(e.value).splitlines()) == 1 and str(files / bad) in str(e.value)


def test_a_malformed_key_on_the_command_line_is_an_error_not_a_crash(files):
    r = invoke("echo", "--timeout", "1", "--curve-server-key", str(files / "short.key"),
               "--curve-client-key", str(files / "alice.key_secret"))  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {files / 'short.key'}: not a ZeroMQ certificate (its public key is not 40 Z85 characters)"
    ]


@pytest.mark.parametrize(
    ("intruder", "message"),
    [("garbage.key", "not a ZeroMQ certificate"), ("folder.key", "a folder, not a key file"),
     ("secret.key", "holds a secret key")],
)  # fmt: skip
def test_an_unusable_file_in_the_allowed_folder_is_refused_before_serving(files, tmp_path, intruder, message):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "alice.key").write_bytes((files / "alice.key").read_bytes())
    if intruder == "folder.key":
        (allowed / intruder).mkdir()
    elif intruder == "secret.key":
        (allowed / intruder).write_bytes((files / "bob.key_secret").read_bytes())
    else:
        (allowed / intruder).write_bytes((files / intruder).read_bytes())
    ctx, server = zmq.Context(), None
    try:
        with pytest.raises(SecurityError, match=message) as e:
            server = CurveServer(files / "server.key_secret", allowed, ctx)
        assert str(allowed / intruder) in str(e.value)
    finally:
        if server is not None:
            server.stop()
        ctx.term()


def test_an_allowed_folder_that_zeromq_would_read_as_empty_is_refused(files, tmp_path):
    """ZeroMQ's key loader globs the folder's name unescaped: `k[1]` reads as empty there, every client refused."""
    import zmq.auth

    allowed = tmp_path / "k[1]"
    allowed.mkdir()
    (allowed / "alice.key").write_bytes((files / "alice.key").read_bytes())
    assert zmq.auth.load_certificates(str(allowed)) == {}  # what the ZAP thread would have served with
    ctx = zmq.Context()
    try:
        with pytest.raises(SecurityError, match=r"holds \[, \], \* or \? reads as empty to ZeroMQ's key loader"):
            CurveServer(files / "server.key_secret", allowed, ctx)
    finally:
        ctx.term()
