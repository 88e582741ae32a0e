"""CurveZMQ stage links (flowgraphs/curve.py) with real pyzmq sockets over tcp:// and ipc://."""

import time

import pytest
import zmq

from flowgraphs.curve import (
    CurveAuthenticator,
    HandshakeCounter,
    authenticator_for,
    make_curve_client,
    make_curve_server,
    z85_key,
)
from flowgraphs.keys import create_curve_keypair, load_curve_keypair, load_curve_public


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


@pytest.fixture
def auth(ctx):
    a = CurveAuthenticator(ctx).start()
    yield a
    a.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key pairs written to and read back from real key files (the way stages get them)."""
    d = tmp_path_factory.mktemp("keys")
    for name in ("rx", "tx", "intruder", "fake_rx"):
        create_curve_keypair(name, d)
    pairs = {name: load_curve_keypair(name, d) for name in ("rx", "tx", "intruder", "fake_rx")}
    assert load_curve_public("rx", d) == pairs["rx"].public
    return pairs


@pytest.fixture(params=["tcp", "ipc"])
def endpoint(request, tmp_path):
    if request.param == "tcp":
        return "tcp://127.0.0.1:*"
    return f"ipc://{tmp_path}/link.ipc"


def socket(ctx, kind):
    s = ctx.socket(kind)
    s.linger = 0
    return s


def bound(sock, endpoint):
    sock.bind(endpoint)
    return sock.last_endpoint.decode()


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def recv_all(sock, timeout_ms=300):
    got = []
    while sock.poll(timeout_ms):
        got.append(sock.recv(copy=False))
    return got


def server(ctx, keys, auth, endpoint, allowed, kind=zmq.PULL):
    s = socket(ctx, kind)
    make_curve_server(s, keys["rx"], allowed=[keys[n].public for n in allowed], authenticator=auth)
    return s, bound(s, endpoint)


def client(ctx, keys, name, addr, server_public=None, kind=zmq.PUSH):
    c = socket(ctx, kind)
    make_curve_client(c, keys[name], server_public or keys["rx"].public)
    c.connect(addr)
    return c


def test_authorized_peer_talks_and_is_named(ctx, auth, keys, endpoint):
    srv, addr = server(ctx, keys, auth, endpoint, allowed=["tx"])
    cli = client(ctx, keys, "tx", addr)
    for i in range(3):
        cli.send(b"frame %d" % i)
    got = [srv.recv(copy=False) for _ in range(3)]
    assert [bytes(f.bytes) for f in got] == [b"frame 0", b"frame 1", b"frame 2"]
    assert {f.get("User-Id") for f in got} == {keys["tx"].public.decode()}
    assert auth.accepted >= 1 and auth.refused == 0


def test_unknown_key_is_refused_counted_and_nothing_gets_through(ctx, auth, keys, endpoint):
    srv, addr = server(ctx, keys, auth, endpoint, allowed=["tx"])
    intruder = client(ctx, keys, "intruder", addr)
    intruder.send(b"SET MODCOD 28")
    assert wait_for(lambda: auth.refused >= 1)
    assert keys["intruder"].public in auth.refused_keys
    good = client(ctx, keys, "tx", addr)
    good.send(b"science")
    got = recv_all(srv)
    assert [bytes(f.bytes) for f in got] == [b"science"]  # the intruder's message never arrives
    assert all(f.get("User-Id") == keys["tx"].public.decode() for f in got)


def test_plaintext_peer_is_refused_and_counted(ctx, auth, keys, endpoint):
    srv, addr = server(ctx, keys, auth, endpoint, allowed=["tx"])
    counter = HandshakeCounter(srv)
    plain = socket(ctx, zmq.PUSH)
    plain.connect(addr)
    plain.send(b"plaintext injection")
    assert wait_for(lambda: counter.drain(50) >= 0 and counter.failed >= 1)
    assert counter.failed_protocol >= 1 and counter.succeeded == 0
    good = client(ctx, keys, "tx", addr)
    good.send(b"science")
    assert [bytes(f.bytes) for f in recv_all(srv)] == [b"science"]
    counter.drain(100)
    assert counter.succeeded == 1
    counter.close()


def test_client_refuses_a_server_with_another_key(ctx, auth, keys, endpoint):
    """A stage that expects rx's key does not deliver to an impostor holding fake_rx's key."""
    impostor = socket(ctx, zmq.PULL)
    make_curve_server(impostor, keys["fake_rx"], allowed=[keys["tx"].public], authenticator=auth)
    addr = bound(impostor, endpoint)
    cli = client(ctx, keys, "tx", addr, server_public=keys["rx"].public)
    counter = HandshakeCounter(cli)
    cli.send(b"science for rx only")
    assert wait_for(lambda: counter.drain(50) >= 0 and counter.failed >= 1)
    assert recv_all(impostor) == []
    counter.close()


def test_fail_closed_when_no_handler_runs(ctx, keys, endpoint):
    auth = CurveAuthenticator(ctx).start()
    srv, addr = server(ctx, keys, auth, endpoint, allowed=["tx"])
    auth.stop()  # the handler is gone: even an allowed key must not get in
    cli = client(ctx, keys, "tx", addr)
    cli.send(b"x")
    assert recv_all(srv, 500) == []


def test_pub_sub_only_authorized_subscribers_receive(ctx, auth, keys, endpoint):
    pub, addr = server(ctx, keys, auth, endpoint, allowed=["tx"], kind=zmq.PUB)
    subs = {}
    for name in ("tx", "intruder"):
        s = client(ctx, keys, name, addr, kind=zmq.SUB)
        s.subscribe(b"")
        subs[name] = s
    assert wait_for(lambda: auth.refused >= 1 and auth.accepted >= 1)
    time.sleep(0.2)  # the subscription crosses after the handshake
    for i in range(5):
        pub.send(b"telemetry %d" % i)
    assert len(recv_all(subs["tx"])) == 5
    assert recv_all(subs["intruder"], 100) == []


def test_authenticator_for_shares_one_handler_per_context(ctx):
    a = authenticator_for(ctx)
    assert authenticator_for(ctx) is a and a.running
    with pytest.raises(RuntimeError, match="already has one"):
        CurveAuthenticator(ctx).start()
    a.stop()
    b = authenticator_for(ctx)
    assert b is not a and b.running
    b.stop()


def test_key_argument_errors(keys):
    assert z85_key(zmq.utils.z85.decode(keys["rx"].public)) == keys["rx"].public
    with pytest.raises(ValueError, match="40-character Z85 key or 32 raw bytes; got 12 bytes"):
        z85_key(b"short key!!!")
    with pytest.raises(ValueError, match="Z85 alphabet"):
        z85_key(b"~" * 40)
    with zmq.Context() as c, c.socket(zmq.PUSH) as s:
        with pytest.raises(TypeError, match=r"\.public and \.secret"):
            make_curve_client(s, object(), keys["rx"].public)
        s.linger = 0


def test_curve_default_policy_and_in_memory_keys(ctx, auth, tmp_path):
    from flowgraphs.curve import curve_enabled, generate_keypair

    assert curve_enabled("tcp://10.0.0.2:5555") and curve_enabled("TCP://[::1]:1")
    assert not curve_enabled("ipc:///tmp/x") and not curve_enabled("inproc://bus")
    assert curve_enabled("ipc:///tmp/x", True) and not curve_enabled("tcp://h:1", False)
    with pytest.raises(ValueError, match="endpoint must look like"):
        curve_enabled("localhost:5555")
    srv_keys, cli_keys = generate_keypair("rx"), generate_keypair("tx")
    assert zmq.curve_public(srv_keys.secret) == srv_keys.public
    assert srv_keys.secret.decode() not in repr(srv_keys)
    srv = socket(ctx, zmq.PULL)
    make_curve_server(srv, srv_keys, allowed=[cli_keys.public], authenticator=auth)
    addr = bound(srv, f"ipc://{tmp_path}/k.ipc")
    cli = socket(ctx, zmq.PUSH)
    make_curve_client(cli, cli_keys, srv_keys.public)
    cli.connect(addr)
    cli.send(b"hello")
    assert srv.recv() == b"hello"
