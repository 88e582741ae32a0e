"""CurveZMQ on stage links: servers that accept only known client keys, clients that check the server.

CurveZMQ (libzmq's CURVE mechanism, RFC 26) encrypts and authenticates a connection with
Curve25519 keys; which clients a server accepts is decided by a ZAP handler (RFC 27), one per
``zmq.Context``, listening on ``inproc://zeromq.zap.01``. :class:`CurveAuthenticator` is that
handler: a thread that answers each handshake from a per-domain set of allowed client public
keys and counts what it accepts and refuses.

Fail closed: :func:`make_curve_server` gives each server socket a ZAP domain and sets
``ZMQ_ZAP_ENFORCE_DOMAIN``, so if no handler is running the server refuses every client
rather than accepting any key (libzmq's default without a handler).

Typical use in a stage::

    auth = authenticator_for(ctx)                       # started once per context
    make_curve_server(pull, my_pair, allowed=[tx_public], authenticator=auth)
    make_curve_client(push, my_pair, server_public=rx_public)
    ...
    auth.stop()                                          # before ctx.term()

What a refusal looks like: an unknown client key gets ZAP status 400 and the handshake fails
(``accepted``/``refused`` counters here); a plaintext (NULL mechanism) peer or a client that
expects another server key fails the handshake before ZAP is asked (count those with
:class:`HandshakeCounter` on the socket's monitor). In every case no message crosses.
On an accepted connection each received frame carries the client's Z85 public key as its
ZAP user id: ``socket.recv(copy=False).get("User-Id")`` names the authenticated sender.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections import deque
from collections.abc import Iterable

import zmq
from zmq.utils import z85

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_VERSION = b"1.0"
_domain_ids = itertools.count(1)
_registry: dict[int, CurveAuthenticator] = {}
_registry_lock = threading.Lock()


def z85_key(key, name: str = "key") -> bytes:
    """A Curve25519 public key as 40 Z85 bytes, from 40 Z85 characters (str or bytes) or 32 raw bytes."""
    if isinstance(key, str):
        key = key.encode("ascii", errors="replace")
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"{name} must be a 40-character Z85 key or 32 raw bytes; got {type(key).__name__}")
    key = bytes(key)
    if len(key) == 32:
        return z85.encode(key)
    if len(key) == 40:
        try:
            z85.decode(key)
        except (ValueError, KeyError, IndexError, struct.error):
            raise ValueError(
                f"{name} must be Z85 text of a 32-byte key; got characters outside the Z85 alphabet "
                "or a group above 2^32"
            ) from None
        return key
    raise ValueError(f"{name} must be a 40-character Z85 key or 32 raw bytes; got {len(key)} bytes")


class CurveAuthenticator:
    """ZAP handler thread for one ``zmq.Context``: CURVE clients allowed per domain, counted.

    Parameters
    ----------
    context : zmq.Context or None
        The context whose sockets it authenticates (default: ``zmq.Context.instance()``).

    Attributes
    ----------
    accepted, refused : int
        Handshakes allowed and refused (all domains).
    refused_by_domain : dict of str to int
    refused_keys : collections.deque of bytes
        Z85 public keys of the last 64 refused clients (public keys, safe to log).
    """

    def __init__(self, context: zmq.Context | None = None):
        self.context = context or zmq.Context.instance()
        self._allowed: dict[bytes, frozenset[bytes]] = {}
        self._lock = threading.Lock()
        self.accepted = 0
        self.refused = 0
        self.refused_by_domain: dict[str, int] = {}
        self.refused_keys: deque[bytes] = deque(maxlen=64)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: zmq.Socket | None = None

    # -- configuration

    def allow(self, domain: str, public_keys: Iterable) -> None:
        """Set the client keys accepted on ``domain`` (replacing any earlier set; empty = refuse all)."""
        keys = frozenset(z85_key(k, "public key") for k in public_keys)
        with self._lock:
            self._allowed[domain.encode()] = keys

    def allowed(self, domain: str) -> frozenset[bytes]:
        """The Z85 client keys accepted on ``domain``."""
        with self._lock:
            return self._allowed.get(domain.encode(), frozenset())

    # -- life cycle

    @property
    def running(self) -> bool:
        """True while the handler thread serves requests."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> CurveAuthenticator:
        """Bind the ZAP endpoint (in the caller's thread, so it is ready on return) and serve it."""
        if self.running:
            return self
        sock = self.context.socket(zmq.REP)
        sock.linger = 0
        try:
            sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as e:
            sock.close()
            raise RuntimeError(
                f"cannot bind the ZAP handler on {ZAP_ENDPOINT} ({e}): this context already has one; "
                "use authenticator_for(context) to share it"
            ) from None
        self._socket = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="marslink-zap", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and close its socket (do this before terminating the context).

        Raises
        ------
        RuntimeError
            If the thread has not ended after ``timeout`` seconds.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the ZAP handler thread did not stop within {timeout} s")
            self._thread = None
        with _registry_lock:
            if _registry.get(id(self.context)) is self:
                del _registry[id(self.context)]

    def __enter__(self) -> CurveAuthenticator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the handler

    def _serve(self) -> None:
        sock = self._socket
        try:
            while not self._stop.is_set():
                if sock.poll(50):
                    self._handle(sock, sock.recv_multipart())
        except zmq.ContextTerminated:
            pass
        finally:
            # close() releases an inproc endpoint asynchronously (in libzmq's reaper thread), so
            # a new handler started right after stop() could find it still bound: unbind first,
            # which the context applies before returning.
            try:
                sock.unbind(ZAP_ENDPOINT)
            except zmq.ZMQError:
                pass
            sock.close(linger=0)
            self._socket = None

    def _handle(self, sock: zmq.Socket, msg: list[bytes]) -> None:
        """Answer one ZAP request (RFC 27): version, id, domain, address, identity, mechanism, creds."""
        if len(msg) < 6:  # not a ZAP request: answer so that the REP socket stays in step
            sock.send_multipart([ZAP_VERSION, b"", b"500", b"malformed ZAP request", b"", b""])
            return
        version, request_id, domain, _address, _identity, mechanism, *creds = msg
        status, text, user = b"400", b"", b""
        if version != ZAP_VERSION:
            text = b"unsupported ZAP version"
        elif mechanism != b"CURVE" or len(creds) != 1 or len(creds[0]) != 32:
            text = b"only CURVE clients are accepted"
        else:
            key = z85.encode(creds[0])
            with self._lock:
                ok = key in self._allowed.get(domain, frozenset())
            if ok:
                status, text, user = b"200", b"OK", key
            else:
                text = b"unknown client key"
                self.refused_keys.append(key)
        if status == b"200":
            self.accepted += 1
        else:
            self.refused += 1
            name = domain.decode(errors="replace")
            self.refused_by_domain[name] = self.refused_by_domain.get(name, 0) + 1
        sock.send_multipart([ZAP_VERSION, request_id, status, text, user, b""])


def authenticator_for(context: zmq.Context | None = None) -> CurveAuthenticator:
    """The running :class:`CurveAuthenticator` of ``context``, started on first use."""
    context = context or zmq.Context.instance()
    with _registry_lock:
        auth = _registry.get(id(context))
        if auth is None or auth.context is not context or not auth.running:
            auth = CurveAuthenticator(context).start()
            _registry[id(context)] = auth
        return auth


def curve_enabled(endpoint: str, setting: bool | None = None) -> bool:
    """Whether a link uses CurveZMQ: ``setting`` if given, else on for tcp:// and off otherwise.

    The issue's default: links that leave the machine (tcp://, also pgm://, epgm://, ws://...)
    are encrypted and authenticated; ipc:// and inproc:// links stay inside one machine and are
    protected by file permissions and process boundaries instead.
    """
    if setting is not None:
        return bool(setting)
    scheme = endpoint.split("://", 1)[0].lower() if "://" in endpoint else ""
    if not scheme:
        raise ValueError(f"endpoint must look like 'tcp://host:port' or 'ipc:///path'; got {endpoint!r}")
    return scheme not in ("ipc", "inproc")


def generate_keypair(name: str = ""):
    """A fresh CurveZMQ key pair in memory (a runner's per-run keys; nothing written to disk).

    Returns
    -------
    flowgraphs.keys.CurveKeyPair
    """
    from flowgraphs.keys import CurveKeyPair

    public, secret = zmq.curve_keypair()
    return CurveKeyPair(public, secret, name)


def _keypair(keypair) -> tuple[bytes, bytes]:
    public = getattr(keypair, "public", None)
    secret = getattr(keypair, "secret", None)
    if public is None or secret is None:
        raise TypeError("keypair must have .public and .secret Z85 keys (flowgraphs.keys.CurveKeyPair)")
    return z85_key(public, "keypair.public"), z85_key(secret, "keypair.secret")


def make_curve_server(
    socket: zmq.Socket,
    keypair,
    allowed: Iterable,
    *,
    authenticator: CurveAuthenticator | None = None,
    domain: str | None = None,
) -> str:
    """Make ``socket`` a CURVE server that accepts only the client public keys in ``allowed``.

    Call before ``bind``/``connect``.

    Parameters
    ----------
    socket : zmq.Socket
    keypair : CurveKeyPair
        This stage's key pair (its public key is what clients must be given).
    allowed : iterable of keys
        Client public keys (Z85 or raw 32 bytes); any other key is refused.
    authenticator : CurveAuthenticator or None
        The handler of the socket's context (default: :func:`authenticator_for` it).
    domain : str or None
        ZAP domain for this socket's key set (default: a new unique one).

    Returns
    -------
    str
        The ZAP domain used.
    """
    public, secret = _keypair(keypair)
    auth = authenticator or authenticator_for(socket.context)
    if auth.context is not socket.context:
        raise ValueError("authenticator serves another zmq.Context than the socket's")
    domain = domain or f"marslink-{next(_domain_ids)}"
    auth.allow(domain, allowed)
    socket.curve_server = True
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.zap_domain = domain.encode()
    socket.zap_enforce_domain = 1  # no handler -> refuse everyone, never accept any key
    return domain


def make_curve_client(socket: zmq.Socket, keypair, server_public) -> None:
    """Make ``socket`` a CURVE client with ``keypair``, talking only to the holder of ``server_public``.

    Call before ``connect``/``bind``.
    """
    public, secret = _keypair(keypair)
    socket.curve_serverkey = z85_key(server_public, "server_public")
    socket.curve_publickey = public
    socket.curve_secretkey = secret


class HandshakeCounter:
    """Counts a socket's handshake outcomes from its monitor (plaintext or wrong-key peers included).

    Register :attr:`socket` in the stage's poller and call :meth:`drain` when it is readable (or
    call ``drain()`` now and then); ``close()`` when done.

    Attributes
    ----------
    succeeded, failed_protocol, failed_auth, failed_other : int
        ZMQ_EVENT_HANDSHAKE_SUCCEEDED, _FAILED_PROTOCOL (e.g. a NULL-mechanism peer on a CURVE
        socket), _FAILED_AUTH (ZAP refused, or the server key did not match), _FAILED_NO_DETAIL.
    """

    EVENTS = (
        zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    )  # fmt: skip

    def __init__(self, socket: zmq.Socket):
        self.socket = socket.get_monitor_socket(self.EVENTS)
        self._target = socket
        self.succeeded = self.failed_protocol = self.failed_auth = self.failed_other = 0

    @property
    def failed(self) -> int:
        """Failed handshakes, all causes."""
        return self.failed_protocol + self.failed_auth + self.failed_other

    def drain(self, timeout_ms: int = 0) -> int:
        """Read every pending monitor event (waiting up to ``timeout_ms`` for the first); return how many."""
        from zmq.utils.monitor import recv_monitor_message

        n = 0
        while self.socket.poll(timeout_ms if n == 0 else 0):
            event = recv_monitor_message(self.socket)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.succeeded += 1
            elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                self.failed_protocol += 1
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.failed_auth += 1
            else:
                self.failed_other += 1
            n += 1
        return n

    def close(self) -> None:
        """Stop monitoring and close the monitor socket."""
        try:
            self._target.disable_monitor()
        except zmq.ZMQError:
            pass
        self.socket.close(linger=0)


__all__ = [
    "CurveAuthenticator", "HandshakeCounter", "ZAP_ENDPOINT", "authenticator_for", "curve_enabled",
    "generate_keypair", "make_curve_client", "make_curve_server", "z85_key",
]
