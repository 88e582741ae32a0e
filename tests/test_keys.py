"""Key files (flowgraphs/keys.py) and ``marslink keys``: formats, permissions, no secret ever shown."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
import zmq
import zmq.auth

from flowgraphs.keys import (
    KEY_DIR_ENV,
    KeyFileError,
    SequenceReservation,
    check_key_name,
    create_curve_keypair,
    create_sdls_key,
    default_key_dir,
    list_keys,
    load_curve_keypair,
    load_curve_public,
    load_sdls_key,
    sdls_fingerprint,
)
from modem.sdls import FrameProtector, FrameVerifier, parse_security_header

MARSLINK = [sys.executable, "-m", "flowgraphs.cli"]


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def marslink(*args, env=None):
    return subprocess.run(
        [*MARSLINK, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env
    )


def test_curve_pair_files_are_zmq_certificates_with_private_secret(tmp_path):
    pair = create_curve_keypair("rx", tmp_path)
    pub, sec = tmp_path / "rx.key", tmp_path / "rx.key_secret"
    assert mode(sec) == 0o600 and mode(pub) == 0o644
    assert zmq.auth.load_certificate(sec) == (pair.public, pair.secret)
    assert zmq.auth.load_certificate(pub) == (pair.public, None)
    assert zmq.curve_public(pair.secret) == pair.public
    assert pair.secret not in pub.read_bytes()
    assert load_curve_keypair("rx", tmp_path) == pair
    assert load_curve_public("rx", tmp_path) == pair.public
    assert pair.secret.decode() not in repr(pair)
    assert zmq.auth.load_certificates(tmp_path) == {pair.public: True}


def test_secret_files_are_0600_even_with_an_open_umask(tmp_path):
    old = os.umask(0)
    try:
        create_curve_keypair("a", tmp_path)
        create_sdls_key("b", tmp_path)
        SequenceReservation(tmp_path / "seq")(5)
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.key_secret") == mode(tmp_path / "b.sdls") == mode(tmp_path / "seq") == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_sdls_key_round_trip_random_and_private(tmp_path):
    p1 = create_sdls_key("uplink", tmp_path)
    p2 = create_sdls_key("downlink", tmp_path)
    k1, k2 = load_sdls_key("uplink", tmp_path), load_sdls_key(p2)
    assert len(k1) == len(k2) == 32 and k1 != k2
    assert k1.hex() in p1.read_text()
    assert mode(p1) == 0o600
    assert sdls_fingerprint(k1) != sdls_fingerprint(k2) and k1.hex()[:16] not in sdls_fingerprint(k1)
    # the key works with the SDLS module
    f = FrameProtector(k1, 3).protect(b"data")
    assert FrameVerifier(load_sdls_key(p1), 3).verify(f) == b"data"


def test_no_overwrite_without_force(tmp_path):
    pair = create_curve_keypair("rx", tmp_path)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        create_curve_keypair("rx", tmp_path)
    assert load_curve_keypair("rx", tmp_path) == pair
    assert create_curve_keypair("rx", tmp_path, overwrite=True) != pair
    key = load_sdls_key(create_sdls_key("k", tmp_path))
    with pytest.raises(FileExistsError):
        create_sdls_key("k", tmp_path)
    assert load_sdls_key("k", tmp_path) == key
    create_sdls_key("k", tmp_path, overwrite=True)
    assert load_sdls_key("k", tmp_path) != key


def test_widely_readable_secret_is_refused(tmp_path):
    create_curve_keypair("rx", tmp_path)
    path = create_sdls_key("k", tmp_path)
    for p in (path, tmp_path / "rx.key_secret"):
        p.chmod(0o640)
    with pytest.raises(KeyFileError, match=r"accessible by group or others \(mode 0640\); run: chmod 600"):
        load_sdls_key("k", tmp_path)
    with pytest.raises(KeyFileError, match="accessible by group or others"):
        load_curve_keypair("rx", tmp_path)
    assert load_curve_public("rx", tmp_path)  # the public half stays usable


def test_malformed_key_files_name_the_file_but_never_echo_content(tmp_path):
    bad = tmp_path / "bad.sdls"
    secretish = "ab" * 31  # 62 hex digits: one byte short
    bad.write_text(secretish + "\n")
    bad.chmod(0o600)
    match = r"bad\.sdls: expected one line of 64 hex digits; got a line of 62"
    with pytest.raises(KeyFileError, match=match) as e:
        load_sdls_key("bad", tmp_path)
    assert secretish not in str(e.value)
    bad.write_text("zz" * 32 + "\n")
    with pytest.raises(KeyFileError, match="only hex digits"):
        load_sdls_key("bad", tmp_path)
    with pytest.raises(KeyFileError, match="does not exist"):
        load_sdls_key("absent", tmp_path)
    pair = create_curve_keypair("rx", tmp_path)
    other = create_curve_keypair("other", tmp_path)
    sec = tmp_path / "rx.key_secret"
    sec.write_bytes(sec.read_bytes().replace(pair.secret, other.secret))
    with pytest.raises(KeyFileError, match="public-key does not belong to secret-key"):
        load_curve_keypair("rx", tmp_path)


@pytest.mark.parametrize("name", ["", ".hidden", "../escape", "a/b", "x" * 65, "spaced name"])
def test_bad_key_names(name, tmp_path):
    with pytest.raises(ValueError, match="key name must be"):
        check_key_name(name)
    with pytest.raises(ValueError, match="key name must be"):
        create_sdls_key(name, tmp_path)


def test_list_keys(tmp_path):
    assert list_keys(tmp_path / "absent") == []
    rx = create_curve_keypair("rx", tmp_path)
    tx = create_curve_keypair("tx", tmp_path)
    (tmp_path / "tx.key_secret").unlink()  # a peer's public key only
    k = load_sdls_key(create_sdls_key("up", tmp_path))
    (tmp_path / "notes.txt").write_text("ignored")
    got = {(i.name, i.kind): i for i in list_keys(tmp_path)}
    assert set(got) == {("rx", "curve"), ("tx", "curve-public"), ("up", "sdls")}
    assert got["rx", "curve"].public == rx.public.decode() and got["rx", "curve"].mode == "0600"
    assert got["tx", "curve-public"].public == tx.public.decode()
    assert got["up", "sdls"].fingerprint == sdls_fingerprint(k) and not got["up", "sdls"].problem
    (tmp_path / "up.sdls").chmod(0o644)
    assert "accessible by group" in {i.name: i for i in list_keys(tmp_path)}["up"].problem


def test_default_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_DIR_ENV, str(tmp_path / "k"))
    assert default_key_dir() == tmp_path / "k"
    create_sdls_key("x")
    assert mode(tmp_path / "k") == 0o700 and (tmp_path / "k" / "x.sdls").exists()


def test_cli_create_and_list_never_print_secrets(tmp_path):
    d = str(tmp_path)
    r = marslink("keys", "create", "rx", "--dir", d)
    assert r.returncode == 0, r.stderr
    pair = load_curve_keypair("rx", tmp_path)
    assert pair.public.decode() in r.stdout and pair.secret.decode() not in r.stdout + r.stderr
    r = marslink("keys", "create", "up", "--kind", "sdls", "--dir", d)
    assert r.returncode == 0, r.stderr
    key = load_sdls_key("up", tmp_path)
    assert sdls_fingerprint(key) in r.stdout and key.hex() not in r.stdout + r.stderr
    r = marslink("keys", "create", "up", "--kind", "sdls", "--dir", d)
    assert r.returncode == 1 and "refusing to overwrite" in r.stderr
    r = marslink("keys", "list", "--dir", d)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert any(ln.split()[:3] == ["rx", "curve", "0600"] and pair.public.decode() in ln for ln in lines)
    assert any(ln.split()[:2] == ["up", "sdls"] and sdls_fingerprint(key) in ln for ln in lines)
    out = r.stdout + r.stderr
    assert key.hex() not in out and pair.secret.decode() not in out
    rows = json.loads(marslink("keys", "list", "--dir", d, "--json").stdout)
    assert {(row["name"], row["kind"]) for row in rows} == {("rx", "curve"), ("up", "sdls")}
    assert marslink("keys", "create", "../x", "--dir", d).returncode == 1


def test_reservation_keeps_sequence_numbers_unique_across_kill_9(tmp_path):
    """A sender killed with SIGKILL and restarted never reuses a sequence number (nonce) under its key."""
    key = create_sdls_key("link", tmp_path)
    script = textwrap.dedent(f"""
        import sys
        from flowgraphs.keys import SequenceReservation, load_sdls_key
        from modem.sdls import FrameProtector
        res = SequenceReservation({str(tmp_path / "link.seq")!r})
        p = FrameProtector(load_sdls_key({str(key)!r}), 9, next_seq=res.next_seq, reserve=res,
                           reserve_block=7)
        while True:
            sys.stdout.write(p.protect(b"x").hex() + "\\n")
            sys.stdout.flush()
    """)
    seen = []
    v = FrameVerifier(load_sdls_key(key), 9)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        lines = [proc.stdout.readline() for _ in range(25)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        frames = [bytes.fromhex(ln.decode()) for ln in lines]
        seqs = [parse_security_header(f)[1] for f in frames]
        assert seqs == list(range(seqs[0], seqs[0] + 25))
        assert all(v.verify(f) == b"x" for f in frames)  # the receiver takes the restarted sender
        seen += seqs
    assert len(seen) == len(set(seen)) == 75  # never a repeated sequence number, hence nonce
    assert v.counters["frames_ok"] == 75


def test_reservation_refuses_to_go_down_and_bad_state(tmp_path):
    res = SequenceReservation(tmp_path / "s")
    assert res.next_seq == 1
    res(100)
    assert SequenceReservation(tmp_path / "s").next_seq == 101
    with pytest.raises(ValueError, match="upto must be >= the stored reservation 100"):
        res(50)
    (tmp_path / "s").write_text("garbage")
    with pytest.raises(KeyFileError, match="decimal integer"):
        SequenceReservation(tmp_path / "s")
