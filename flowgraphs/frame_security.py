"""SDLS frame protection on the user-frame path: the tx's protector and the sink's verifier.

Both come from the flowgraph's ``[security]`` table (``sdls_key_file``, ``sdls_spi``,
``sdls_encrypt``, ``sdls_window``), handed to the stages in ``StageSpec.security``. The key
is read from its file (mode 0600 required, :func:`flowgraphs.keys.load_sdls_key`) and never
logged.

Sequence numbers belong to the key: a transmitter reserves them in blocks in
``KEY_FILE.txseq`` (next to the key, mode 0600, written before a block is used), so neither a
restart nor a new run under the same key ever repeats an AES-GCM nonce. The receiver keeps the
highest number it accepted in ``KEY_FILE.rxseq`` at the end of a run (and in the sink's state
folder during it) and refuses everything at or below it afterwards: frames recorded in an
earlier run cannot be replayed into a later one.
"""

from __future__ import annotations

import os
from pathlib import Path

from flowgraphs.journal import read_json
from flowgraphs.stage import ConfigError

RESERVE_BLOCK = 4096  #: SDLS sequence numbers reserved per write of the .txseq file


def _seq_file(key_file: str, suffix: str) -> Path:
    return Path(key_file + suffix)


def _write_private_json(path: Path, obj: dict) -> None:
    import json

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load(spec):
    from flowgraphs.keys import load_sdls_key

    sec = spec.security
    path = sec.get("sdls_key_file", "")
    if not path:
        return None, sec
    try:
        return load_sdls_key(path), sec
    except (OSError, ValueError) as e:
        raise ConfigError(f"stage {spec.name!r}: [security] sdls_key_file: {e}") from None


def make_protector(spec, payload_bytes: int):
    """The :class:`modem.sdls.FrameProtector` of a tx stage's spec, or None without SDLS."""
    from flowgraphs.userframes import MAX_PAYLOAD
    from modem.sdls import FrameProtector, overhead_bytes

    key, sec = _load(spec)
    if key is None:
        return None
    if payload_bytes + overhead_bytes() > MAX_PAYLOAD:
        raise ConfigError(
            f"stage {spec.name!r}: key 'payload_bytes': with SDLS at most {MAX_PAYLOAD - overhead_bytes()}; "
            f"got {payload_bytes}"
        )
    seq_path = _seq_file(sec["sdls_key_file"], ".txseq")
    state = read_json(seq_path, {}) or {}
    reserved = int(state.get("reserved", 0))

    def reserve(upto: int) -> None:
        _write_private_json(seq_path, {"reserved": int(upto)})

    return FrameProtector(
        key,
        sec.get("sdls_spi", 1),
        encrypt=sec.get("sdls_encrypt", True),
        next_seq=reserved + 1,
        reserve=reserve,
        reserve_block=RESERVE_BLOCK,
    )


def make_verifier(spec, floor: int | None = None):
    """The :class:`modem.sdls.FrameVerifier` of a sink stage's spec, or None without SDLS.

    ``floor``: highest sequence number already accepted (a restarted sink); default: the one
    stored next to the key by the previous run.
    """
    from modem.sdls import FrameVerifier

    key, sec = _load(spec)
    if key is None:
        return None
    if floor is None:
        floor = int((read_json(_seq_file(sec["sdls_key_file"], ".rxseq"), {}) or {}).get("highest", 0))
    return FrameVerifier(
        key,
        sec.get("sdls_spi", 1),
        encrypt=sec.get("sdls_encrypt", True),
        window=sec.get("sdls_window", 1024),
        floor=floor,
    )


def save_receiver_floor(spec, highest: int) -> None:
    """Store the highest accepted sequence number next to the key (end of a sink's run)."""
    path = spec.security.get("sdls_key_file", "")
    if path:
        _write_private_json(_seq_file(path, ".rxseq"), {"highest": int(highest)})
