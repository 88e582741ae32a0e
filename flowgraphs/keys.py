"""Key files: CurveZMQ key pairs for stage links and AES-256 keys for SDLS frame protection.

A key directory (``--dir``, else ``$MARSLINK_KEY_DIR``, else ``~/.config/marslink/keys``,
created with mode 0700) holds, per name:

* ``NAME.key`` and ``NAME.key_secret``: a CurveZMQ key pair (``zmq.curve_keypair``, Z85 text) in
  the layout of ``zmq.auth`` certificate files, so ``zmq.auth.load_certificate`` reads them;
  the public file may be handed to peers, the secret file is mode 0600.
* ``NAME.sdls``: 32 random bytes (``os.urandom``) as 64 hex digits, mode 0600.

Secret files are written under a temporary name with mode 0600 from the start, synced, then
linked into place, so they are never readable by others, not even briefly, and a crash never
leaves half a key. Loading a secret file that group or others may read is refused (as ssh
does). Key material never appears in a message, a repr or a listing; listings show the
public Curve key and, for SDLS keys, a fingerprint (the first 8 bytes of a SHA-256 over a
fixed label and the key) to compare keys between machines.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

KEY_DIR_ENV = "MARSLINK_KEY_DIR"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
SDLS_SUFFIX = ".sdls"
SDLS_KEY_BYTES = 32
Z85_KEY_CHARS = 40  # a 32-byte Curve25519 key in Z85
_Z85_ALPHABET = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_FINGERPRINT_LABEL = b"marslink sdls key fingerprint v1\x00"


class KeyFileError(ValueError):
    """A key file is missing, malformed or too widely readable (the message names the file)."""


def default_key_dir() -> Path:
    """``$MARSLINK_KEY_DIR`` if set, else ``~/.config/marslink/keys``."""
    env = os.environ.get(KEY_DIR_ENV)
    return Path(env) if env else Path.home() / ".config" / "marslink" / "keys"


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid key name (letters, digits, ``_.-``, 1-64, no leading dot)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"key name must be 1-64 characters of letters, digits, '_', '.', '-', starting with a "
            f"letter or digit; got {name!r}"
        )
    return name


def resolve_key_dir(key_dir=None) -> Path:
    """``key_dir`` as a Path, or :func:`default_key_dir` when it is None."""
    return Path(key_dir) if key_dir is not None else default_key_dir()


def _ensure_dir(key_dir: Path) -> None:
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_file(path: Path, text: str, mode: int, overwrite: bool) -> None:
    """Write ``text`` to ``path`` atomically with permissions ``mode`` from creation on."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits we want; never adds any
            os.write(fd, text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path exists: no clobbering, no race
            except FileExistsError:
                raise FileExistsError(
                    f"{path} exists; refusing to overwrite a key (overwrite=True / --force)"
                ) from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_private(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"key file {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )


def _resolve(name_or_path, key_dir, suffix: str) -> Path:
    """A path as given (if it has a directory part or the suffix), else ``key_dir/NAME + suffix``."""
    s = os.fspath(name_or_path)
    if os.sep in s or s.endswith(suffix):
        return Path(s)
    return resolve_key_dir(key_dir) / (check_key_name(s) + suffix)


def _banner(kind: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"#   marslink {kind}, created {stamp}\n"


# ---------------------------------------------------------------------------------------------
# CurveZMQ key pairs


@dataclass(frozen=True)
class CurveKeyPair:
    """A CurveZMQ key pair, both keys as 40-character Z85 bytes (the form pyzmq's options take).

    The secret key is left out of the repr.
    """

    public: bytes
    secret: bytes | None = field(default=None, repr=False)
    name: str = ""


def _check_z85(key: bytes, what: str, path: Path) -> bytes:
    if len(key) != Z85_KEY_CHARS or not set(key) <= _Z85_ALPHABET:
        raise KeyFileError(
            f"{path}: {what} must be {Z85_KEY_CHARS} Z85 characters; got {len(key)} characters"
        )
    from zmq.utils import z85

    try:
        z85.decode(key)
    except (ValueError, KeyError, struct.error):  # a 5-character group above 2^32 - 1
        raise KeyFileError(f"{path}: {what} is not a valid Z85 encoding of 32 bytes") from None
    return key


def _curve_text(kind: str, public: bytes, secret: bytes | None) -> str:
    lines = [
        _banner(kind),
        "#   ZeroMQ CURVE certificate (zmq.auth.load_certificate reads it)\n",
    ]
    if secret is not None:
        lines.append("#   SECRET: keep this file private (mode 0600); give peers the .key file\n")
    lines += ["\n", "metadata\n", "curve\n", f'    public-key = "{public.decode("ascii")}"\n']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"\n')
    return "".join(lines)


def create_curve_keypair(name: str, key_dir=None, *, overwrite: bool = False) -> CurveKeyPair:
    """Create ``NAME.key`` (public, 0644) and ``NAME.key_secret`` (public and secret, 0600).

    Raises
    ------
    FileExistsError
        If either file exists and ``overwrite`` is False (nothing is written then).
    """
    import zmq

    check_key_name(name)
    d = resolve_key_dir(key_dir)
    _ensure_dir(d)
    pub_path, sec_path = d / (name + PUBLIC_SUFFIX), d / (name + SECRET_SUFFIX)
    if not overwrite:
        for p in (pub_path, sec_path):
            if p.exists():
                raise FileExistsError(f"{p} exists; refusing to overwrite a key (overwrite=True / --force)")
    public, secret = zmq.curve_keypair()
    _write_file(sec_path, _curve_text("CurveZMQ secret key", public, secret), 0o600, overwrite)
    _write_file(pub_path, _curve_text("CurveZMQ public key", public, None), 0o644, overwrite)
    return CurveKeyPair(public, secret, name)


def _read_curve(path: Path) -> tuple[bytes | None, bytes | None]:
    public = secret = None
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(b"#") or b"=" not in line:
            continue
        key, value = (part.strip() for part in line.split(b"=", 1))
        value = value.strip(b"'\"")
        if key == b"public-key":
            public = _check_z85(value, "public-key", path)
        elif key == b"secret-key":
            secret = _check_z85(value, "secret-key", path)
    return public, secret


def load_curve_keypair(name_or_path, key_dir=None) -> CurveKeyPair:
    """Read a key pair from ``NAME.key_secret`` (or that file's path); refused unless mode 0600-like."""
    path = _resolve(name_or_path, key_dir, SECRET_SUFFIX)
    _check_private(path)
    public, secret = _read_curve(path)
    if public is None or secret is None:
        raise KeyFileError(f"{path}: a secret key file needs both public-key and secret-key lines")
    import zmq

    if zmq.curve_public(secret) != public:
        raise KeyFileError(f"{path}: public-key does not belong to secret-key")
    return CurveKeyPair(public, secret, path.name.removesuffix(SECRET_SUFFIX))


def load_curve_public(name_or_path, key_dir=None) -> bytes:
    """The Z85 public key from ``NAME.key`` (or that file's path; a secret file works too)."""
    path = _resolve(name_or_path, key_dir, PUBLIC_SUFFIX)
    public, _ = _read_curve(path)
    if public is None:
        raise KeyFileError(f"{path}: no public-key line")
    return public


# ---------------------------------------------------------------------------------------------
# SDLS keys


def create_sdls_key(name: str, key_dir=None, *, overwrite: bool = False) -> Path:
    """Create ``NAME.sdls``: 32 random bytes as 64 hex digits, mode 0600; return its path."""
    check_key_name(name)
    d = resolve_key_dir(key_dir)
    _ensure_dir(d)
    path = d / (name + SDLS_SUFFIX)
    key = os.urandom(SDLS_KEY_BYTES)
    text = _banner("SDLS AES-256 key") + "#   SECRET: keep this file private (mode 0600)\n" + key.hex() + "\n"
    _write_file(path, text, 0o600, overwrite)
    return path


def load_sdls_key(name_or_path, key_dir=None) -> bytes:
    """The 32-byte key of ``NAME.sdls`` (or that file's path); refused unless mode 0600-like."""
    path = _resolve(name_or_path, key_dir, SDLS_SUFFIX)
    _check_private(path)
    lines = [ln.strip() for ln in path.read_text("ascii", errors="replace").splitlines()]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(body) != 1 or len(body[0]) != 2 * SDLS_KEY_BYTES:
        shape = f"{len(body)} key lines" if len(body) != 1 else f"a line of {len(body[0])} characters"
        raise KeyFileError(f"{path}: expected one line of {2 * SDLS_KEY_BYTES} hex digits; got {shape}")
    if not set(body[0]) <= _HEX_DIGITS:  # bytes.fromhex would also skip spaces
        raise KeyFileError(f"{path}: the key line must hold only hex digits 0-9a-f")
    return bytes.fromhex(body[0])


def sdls_fingerprint(key: bytes) -> str:
    """16 hex digits identifying an SDLS key without revealing it (SHA-256 over label + key)."""
    return hashlib.sha256(_FINGERPRINT_LABEL + bytes(key)).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# listing


@dataclass(frozen=True)
class KeyInfo:
    """One key in a key directory, as listed (no secret material).

    Attributes
    ----------
    name : str
    kind : str
        "curve" (pair with its secret file), "curve-public" (public file only) or "sdls".
    path : Path
        The secret file, or the public file for "curve-public".
    public : str
        Z85 public key (Curve), "" for SDLS keys.
    fingerprint : str
        SDLS key fingerprint (:func:`sdls_fingerprint`), "" for Curve keys.
    mode : str
        Permissions of ``path``, octal.
    problem : str
        Why the key could not be used (bad permissions, malformed file), "" if none.
    """

    name: str
    kind: str
    path: Path
    public: str = ""
    fingerprint: str = ""
    mode: str = ""
    problem: str = ""


def list_keys(key_dir=None) -> list[KeyInfo]:
    """Every key in ``key_dir``, sorted by name then kind; an absent directory lists nothing."""
    d = resolve_key_dir(key_dir)
    if not d.is_dir():
        return []
    out = []
    for path in sorted(d.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        name, suffix = path.stem, path.suffix
        mode = f"{stat.S_IMODE(path.stat().st_mode):04o}"
        public = fingerprint = problem = ""
        if suffix == SECRET_SUFFIX:
            kind = "curve"
            try:
                public = load_curve_keypair(path).public.decode()
            except KeyFileError as e:
                problem = str(e)
        elif suffix == PUBLIC_SUFFIX:
            if (d / (name + SECRET_SUFFIX)).exists():
                continue  # listed with its secret file
            kind = "curve-public"
            try:
                public = load_curve_public(path).decode()
            except KeyFileError as e:
                problem = str(e)
        elif suffix == SDLS_SUFFIX:
            kind = "sdls"
            try:
                fingerprint = sdls_fingerprint(load_sdls_key(path))
            except KeyFileError as e:
                problem = str(e)
        else:
            continue
        out.append(KeyInfo(name, kind, path, public, fingerprint, mode, problem))
    return out


# ---------------------------------------------------------------------------------------------
# SDLS sequence-number reservations


class SequenceReservation:
    """Durable high-water mark for :class:`modem.sdls.FrameProtector`'s ``reserve`` hook.

    ``FrameProtector(key, spi, next_seq=res.next_seq, reserve=res)``: before the protector uses
    a block of sequence numbers, the block's last number is written to ``path`` (atomically,
    synced); a sender restarted after a crash resumes past it, so no (key, SPI, sequence
    number), hence no AES-GCM nonce, is ever used twice. At most one block of numbers is
    skipped per restart.

    Parameters
    ----------
    path : path-like
        State file (one decimal integer), created mode 0600 on the first reservation.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._stored = self._read()

    def _read(self) -> int:
        try:
            text = self.path.read_text("ascii").strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise KeyFileError(f"{self.path}: expected the last reserved sequence number (a decimal integer)")
        return int(text)

    @property
    def next_seq(self) -> int:
        """First sequence number no previous run may have used."""
        return self._stored + 1

    def __call__(self, upto: int) -> None:
        """Persist ``upto`` as the highest reserved sequence number (must not go down)."""
        if upto < self._stored:
            raise ValueError(f"upto must be >= the stored reservation {self._stored}; got {upto}")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_file(self.path, f"{upto}\n", 0o600, overwrite=True)
        self._stored = upto


__all__ = [
    "KEY_DIR_ENV", "CurveKeyPair", "KeyFileError", "KeyInfo", "SequenceReservation", "check_key_name",
    "create_curve_keypair", "create_sdls_key", "default_key_dir", "list_keys", "load_curve_keypair",
    "load_curve_public", "load_sdls_key", "resolve_key_dir", "sdls_fingerprint",
]
