"""A TCP server speaking the text protocol of libiio 0.2x's network daemon (iiod).

libiio's network backend (``ip:HOST[:PORT]`` URIs, default port 30431) sends one command
per line, ending in CR LF, and reads integer answers, one per line (a negative answer is
``-errno``). The commands this server answers:

=================================================  ==============================================
``VERSION``                                        ``MAJOR.MINOR.TAG`` (0.24, 7-character tag)
``PRINT``                                          length, then the context XML and a newline
``TIMEOUT ms``                                     0
``OPEN dev samples MASK [CYCLIC]``                 0 or -errno; MASK: 8 hex digits per 32 channels,
                                                   most significant word first
``CLOSE dev``                                      0 or -errno
``READ dev [INPUT|OUTPUT chn] [DEBUG|BUFFER] a``   length, then the value, NUL and newline
``WRITE dev [INPUT|OUTPUT chn] [DEBUG|BUFFER] a n`` the client sends n bytes; answer: n or -errno
``READBUF dev n``                                  length, mask line, n bytes of samples
``WRITEBUF dev n``                                 0 (go ahead), the client sends n bytes; answer: n
``GETTRIG dev`` / ``SETTRIG dev [trig]``           -ENOENT (the Pluto's devices have no trigger)
``SET dev BUFFERS_COUNT n``                        0 (kernel buffers per stream)
``EXIT`` / ``QUIT``                                closes the connection
=================================================  ==============================================

Devices are named by id (``iio:device3``) or name. Any other command answers -EINVAL.
libiio opens one extra connection per buffer, so each connection runs in its own thread;
buffers belong to the connection that opened them and close with it.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading

import numpy as np

from hw.iio_context import IioContext, IioDevice, IioError

log = logging.getLogger(__name__)

#: Answer to VERSION: libiio 0.24's protocol, 7-character tag.
VERSION = "0.24.virtual"
DEFAULT_PORT = 30431  #: libiio's network backend port
MAX_LINE = 4096
MAX_WRITE = 1 << 28  #: largest WRITE/WRITEBUF payload accepted, bytes

_HELP = (
    "Available commands: HELP EXIT VERSION PRINT TIMEOUT OPEN CLOSE READ WRITE READBUF WRITEBUF "
    "GETTRIG SETTRIG SET\n"
)


class _Conn:
    """Line and block reads over a socket, with our own buffer (iiod frames both ways)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.opened: dict[str, int] = {}  # device id -> channel mask

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def readline(self) -> bytes | None:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise IioError(errno.EINVAL, "command line too long")
            if not self._fill():
                return None

    def readexact(self, n: int) -> bytearray:
        if len(self.buf) >= n:
            out = self.buf[:n]
            del self.buf[:n]
            return out
        out = bytearray(n)
        view = memoryview(out)
        have = len(self.buf)
        view[:have] = self.buf
        self.buf.clear()
        while have < n:
            got = self.sock.recv_into(view[have:], n - have)
            if not got:
                raise ConnectionError("client closed during a transfer")
            have += got
        return out

    def send(self, *parts) -> None:
        if len(parts) > 1 and sum(len(p) for p in parts) <= 1 << 16:
            parts = (b"".join(parts),)  # one segment: no Nagle/delayed-ACK stall
        for p in parts:
            self.sock.sendall(p)


class IiodServer:
    """Serve an IIO context over the iiod protocol of libiio 0.2x.

    Parameters
    ----------
    context : IioContext
    backend : object
        The device behind the context: ``read_attr(dev, chn, attr)``,
        ``write_attr(dev, chn, attr, text)``, ``open(owner, dev, samples, mask, cyclic)``,
        ``close(owner, dev)``, ``close_all(owner)``, ``readbuf(owner, dev, mask, nsamples)``
        (int16 array), ``writebuf(owner, dev, data)``, ``set_buffers_count(dev, n)``; each
        raising :class:`IioError` on failure.
    host : str
        Address to listen on (default loopback only).
    port : int
        TCP port; 0 picks a free one (see :attr:`port`).

    Examples
    --------
    >>> server = IiodServer(ctx, backend, port=0).start()   # doctest: +SKIP
    >>> uri = f"ip:127.0.0.1:{server.port}"                   # doctest: +SKIP
    """

    def __init__(self, context: IioContext, backend, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535; got {port!r}")
        self.context = context
        self.backend = backend
        self.host = host
        self._port = port
        self._xml = context.xml.encode("utf-8")
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.connections = 0  #: connections accepted so far

    @property
    def port(self) -> int:
        """The TCP port listened on (the chosen one when started with port 0)."""
        return self._port

    def start(self) -> IiodServer:
        """Bind, listen and serve in background threads; returns self.

        Raises
        ------
        OSError
            The port is in use or cannot be bound (the message names host and port).
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._port))
        except OSError as e:
            sock.close()
            raise OSError(e.errno, f"cannot listen on {self.host}:{self._port}: {e.strerror}") from None
        sock.listen(16)
        self._port = sock.getsockname()[1]
        self._sock = sock
        t = threading.Thread(target=self._accept_loop, name=f"iiod-accept-{self._port}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop listening, close every connection and wait for the threads."""
        self._stopping.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, addr = self._sock.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(client)
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(client,), name=f"iiod-{addr[1]}", daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        try:
            while not self._stopping.is_set():
                line = conn.readline()
                if line is None:
                    break
                words = line.decode("ascii", "replace").split()
                if not words:
                    continue
                if words[0].upper() in ("EXIT", "QUIT"):
                    break
                self._command(conn, words)
        except (ConnectionError, OSError) as e:
            log.debug("connection ended: %s", e)
        except IioError as e:
            log.info("protocol error, closing connection: %s", e)
        finally:
            try:
                self.backend.close_all(conn)
            except IioError:
                pass
            with self._lock:
                self._conns.discard(sock)
            sock.close()

    # -- commands --------------------------------------------------------------------------
    def _device(self, ident: str) -> IioDevice:
        dev = self.context.device(ident)
        if dev is None:
            raise IioError(errno.ENODEV, f"no device {ident}")
        return dev

    def _command(self, conn: _Conn, words: list[str]) -> None:
        cmd = words[0].upper()
        args = words[1:]
        try:
            if cmd == "VERSION":
                conn.send(f"{VERSION}\n".encode())
            elif cmd == "PRINT":
                conn.send(f"{len(self._xml)}\n".encode(), self._xml, b"\n")
            elif cmd == "HELP":
                conn.send(_HELP.encode())
            elif cmd == "TIMEOUT" and len(args) == 1:
                conn.send(b"0\n")
            elif cmd == "READ" and len(args) in (2, 3, 4):
                self._read_attr(conn, args)
            elif cmd == "WRITE" and len(args) in (3, 4, 5):
                self._write_attr(conn, args)
            elif cmd == "OPEN" and len(args) in (3, 4):
                self._open(conn, args)
            elif cmd == "CLOSE" and len(args) == 1:
                dev = self._device(args[0])
                if dev.id not in conn.opened:
                    raise IioError(errno.ENXIO, f"{dev.id} is not open on this connection")
                del conn.opened[dev.id]
                self.backend.close(conn, dev)
                conn.send(b"0\n")
            elif cmd == "READBUF" and len(args) == 2:
                self._readbuf(conn, args)
            elif cmd == "WRITEBUF" and len(args) == 2:
                self._writebuf(conn, args)
            elif cmd in ("GETTRIG", "SETTRIG") and len(args) in (1, 2):
                self._device(args[0])
                conn.send(f"{-errno.ENOENT}\n".encode())
            elif cmd == "SET" and len(args) == 3 and args[1].upper() == "BUFFERS_COUNT":
                dev = self._device(args[0])
                n = _int_arg(args[2], "BUFFERS_COUNT")
                if n < 1:
                    raise IioError(errno.EINVAL, f"BUFFERS_COUNT must be >= 1; got {n}")
                self.backend.set_buffers_count(dev, n)
                conn.send(b"0\n")
            else:
                raise IioError(errno.EINVAL, f"unknown command {' '.join(words)[:80]!r}")
        except IioError as e:
            log.debug("%s -> -%d (%s)", " ".join(words)[:120], e.errno, e)
            conn.send(f"{-e.errno}\n".encode())

    def _attr_target(self, args: list[str]):
        """(device, channel or None, attribute) from READ/WRITE arguments (without the length)."""
        dev = self._device(args[0])
        if len(args) == 4:
            direction = args[1].upper()
            if direction not in ("INPUT", "OUTPUT"):
                raise IioError(errno.EINVAL, f"expected INPUT or OUTPUT; got {args[1]!r}")
            chn = dev.channel(args[2], direction == "OUTPUT")
            if chn is None:
                raise IioError(errno.ENODEV, f"{dev.id} has no {direction.lower()} channel {args[2]}")
            table, name = chn.attrs, args[3]
        elif len(args) == 3:
            kind = args[1].upper()
            if kind not in ("DEBUG", "BUFFER"):
                raise IioError(errno.EINVAL, f"expected DEBUG or BUFFER; got {args[1]!r}")
            chn = None
            table, name = (dev.debug_attrs if kind == "DEBUG" else dev.buffer_attrs), args[2]
        else:
            chn, table, name = None, dev.attrs, args[1]
        attr = table.get(name)
        if attr is None:
            raise IioError(errno.ENOENT, f"{dev.id}: no attribute {name}")
        return dev, chn, attr

    def _read_attr(self, conn: _Conn, args: list[str]) -> None:
        dev, chn, attr = self._attr_target(args)
        value = self.backend.read_attr(dev, chn, attr).encode("utf-8") + b"\x00"
        conn.send(f"{len(value)}\n".encode() + value + b"\n")

    def _write_attr(self, conn: _Conn, args: list[str]) -> None:
        n = _int_arg(args[-1], "length")
        if not 0 <= n <= MAX_WRITE:
            raise IioError(errno.EINVAL, f"attribute write of {n} bytes")
        payload = conn.readexact(n)  # the client sends it in any case: always consume it
        dev, chn, attr = self._attr_target(args[:-1])
        self.backend.write_attr(dev, chn, attr, payload.decode("utf-8", "replace"))
        conn.send(f"{n}\n".encode())

    def _open(self, conn: _Conn, args: list[str]) -> None:
        dev = self._device(args[0])
        samples = _int_arg(args[1], "samples count")
        cyclic = len(args) == 4
        if cyclic and args[3].upper() != "CYCLIC":
            raise IioError(errno.EINVAL, f"expected CYCLIC; got {args[3]!r}")
        try:
            mask = dev.parse_mask(args[2])
        except ValueError as e:
            raise IioError(errno.EINVAL, str(e)) from None
        if dev.id in conn.opened:
            raise IioError(errno.EBUSY, f"{dev.id} already open on this connection")
        self.backend.open(conn, dev, samples, mask, cyclic)
        conn.opened[dev.id] = mask
        conn.send(b"0\n")

    def _readbuf(self, conn: _Conn, args: list[str]) -> None:
        dev = self._device(args[0])
        nbytes = _int_arg(args[1], "byte count")
        if dev.id not in conn.opened:
            raise IioError(errno.EBADF, f"{dev.id} is not open on this connection")
        mask = conn.opened[dev.id]
        size = dev.sample_size(mask)
        nsamples = nbytes // size
        if nsamples == 0:
            conn.send(b"0\n")
            return
        data = np.ascontiguousarray(self.backend.readbuf(conn, dev, mask, nsamples))
        body = memoryview(data).cast("B")
        head = f"{len(body)}\n{dev.format_mask(mask)}\n".encode()
        conn.send(head, body)
        if len(body) < nbytes:
            conn.send(b"0\n")

    def _writebuf(self, conn: _Conn, args: list[str]) -> None:
        dev = self._device(args[0])
        nbytes = _int_arg(args[1], "byte count")
        if dev.id not in conn.opened:
            raise IioError(errno.EBADF, f"{dev.id} is not open on this connection")
        if not 0 < nbytes <= MAX_WRITE:
            raise IioError(errno.EINVAL, f"buffer write of {nbytes} bytes")
        conn.send(b"0\n")  # go ahead: the client sends the samples now
        data = conn.readexact(nbytes)
        self.backend.writebuf(conn, dev, conn.opened[dev.id], data)
        conn.send(f"{nbytes}\n".encode())


def _int_arg(text: str, what: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise IioError(errno.EINVAL, f"{what} must be an integer; got {text!r}") from None
