"""The stage base class: sockets, the receive-process-send loop, backpressure, metrics, shutdown.

A stage is one processing step of a flowgraph (source, tx, channel, rx, sink, acm, monitor,
radio, ...). It runs in its own process (``python -m flowgraphs.stage SPEC.json``, started by
the runner in :mod:`flowgraphs.graph`) or, in the in-process mode used by tests, in a thread.
Writing a stage means subclassing :class:`Stage`:

.. code-block:: python

    class Scale(Stage):
        TYPE = "scale"
        PARAMS = {"gain": Param(1.0, float, "amplitude gain", lo=0.0)}
        INPUTS = {"in": Port("iq", "samples to scale")}
        OUTPUTS = {"out": Port("iq", "scaled samples")}

        def on_iq(self, port, chunk, gap):
            self.send_iq("out", chunk.samples * self.p.gain)

    STAGE = Scale   # in flowgraphs/stages/scale.py: a flowgraph says type = "scale"

Links
    Stream links are ZeroMQ PUSH (the sending stage binds) to PULL (the receiving stage
    connects), as GNU Radio's gr-zeromq blocks do, with small high-water marks: a slow stage
    makes its upstream block in :meth:`Stage.send_iq` instead of growing a queue (backpressure).
    IQ links carry :mod:`flowgraphs.wire` IQ messages (gr-zeromq compatible, tagged with the
    stream offset by default); other links carry :mod:`flowgraphs.wire` messages.
Bus
    Telemetry and control go over a PUB/SUB bus hosted by the runner (an XSUB/XPUB proxy):
    :meth:`Stage.publish` sends ``(topic, dict)``, the topics in ``SUBSCRIBE`` arrive in
    :meth:`Stage.on_bus`. The runner stops a stage with a ``ctl.stop`` message; SIGINT and
    SIGTERM do the same in a stage process. Topics in ``CONTROL_TOPICS`` (and ``ctl.stop``) are
    commands: each is applied once and in order per sender and topic, a replayed or older one is
    refused and counted (``control`` in the stats and summary).
Security
    A link whose :class:`Endpoint` has ``security["curve"]`` runs CurveZMQ (the runner decides
    which, :func:`flowgraphs.graph.link_uses_curve`, and gives each stage a key pair): the
    binding side is the CURVE server and accepts only the peer keys it was given; every refused
    handshake (a plaintext peer, an unknown key) is counted (``security`` in the stats and
    summary). The bus runs CurveZMQ too when ``security["bus_server_key"]`` is set.
Accounting
    Every input refuses malformed, oversized and out-of-order messages (counted per port in
    ``self.wire_stats``) and goes on. Every stage publishes its counters on ``stage.stats``
    twice a second and its :meth:`Stage.summary` on ``stage.summary`` when it stops.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import zmq

from flowgraphs import wire

#: Topics of the bus. A stage may publish others; these are the ones the runtime uses.
TOPIC_STATS = "stage.stats"
TOPIC_SUMMARY = "stage.summary"
TOPIC_DONE = "stage.done"
TOPIC_CTL = "ctl.stop"
TOPIC_LOG = "stage.log"

PORT_KINDS = ("iq", "bytes", "frames")
_STATS_PERIOD_S = 0.5
#: What a bus handler raises for a well-formed message with unusable fields (counted, dropped).
_HANDLER_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError)


class ConfigError(ValueError):
    """A bad flowgraph file or stage parameter; the message names file, stage and key."""


@dataclass(frozen=True)
class Param:
    """A stage parameter: default, type, allowed range or choices, unit and help.

    Attributes
    ----------
    default : object
        Value when the flowgraph does not give one (None: the parameter is optional).
    kind : type or tuple of types
        Accepted Python types (an int is accepted for a float).
    help : str
    lo, hi : float, optional
        Inclusive range for numbers.
    choices : tuple, optional
    unit : str
        Shown in error messages ("dB", "Hz", "s", "bytes").
    """

    default: object
    kind: type | tuple
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    unit: str = ""

    def check(self, value, where: str):
        """Return ``value`` (an int widened to float where a float is expected) or raise ConfigError."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if value is None and self.default is None:
            return None
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{where}: must be {names}; got {value!r}")
        unit = f" {self.unit}" if self.unit else ""
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where}: must be one of {', '.join(map(repr, self.choices))}; got {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value != value:  # NaN
                raise ConfigError(f"{where}: must be a number; got NaN")
            if self.lo is not None and value < self.lo or self.hi is not None and value > self.hi:
                lo = "-inf" if self.lo is None else f"{self.lo:g}"
                hi = "inf" if self.hi is None else f"{self.hi:g}"
                raise ConfigError(f"{where}: must be in [{lo}, {hi}]{unit}; got {value!r}")
        return value


@dataclass(frozen=True)
class Port:
    """A stream port: its kind ("iq", "bytes" or "frames") and what it carries."""

    kind: str
    help: str = ""


@dataclass
class Endpoint:
    """One end of a stream link as a stage sees it.

    Attributes
    ----------
    address : str
        ZeroMQ endpoint (``ipc://``, ``tcp://`` or ``inproc://``).
    bind : bool
        Bind (the link's sending side by default) or connect.
    tagged : bool
        IQ links: gr-zeromq tag header on every message (``pass_tags``).
    hwm : int
        High-water mark, messages.
    security : dict
        Link security settings for :meth:`Stage.configure_socket` (keys, peers); empty: none.
    """

    address: str
    bind: bool
    tagged: bool = True
    hwm: int = 16
    security: dict = field(default_factory=dict)


@dataclass
class StageSpec:
    """Everything a stage needs to start: what the runner writes to the stage's JSON file.

    Attributes
    ----------
    name, type : str
    params : dict
        Checked parameter values (defaults filled in).
    link : dict
        The flowgraph's ``[link]`` table, shared by all stages (symbol rate, samples per symbol,
        time scale, scenario, seed...).
    inputs, outputs : dict of str -> Endpoint (outputs: a list of Endpoint per port)
    bus_pub, bus_sub : str
        Endpoints of the bus proxy to connect to ("" for none).
    epoch : int
        Incarnation: 0 at the first start, +1 at each restart by the runner.
    peers : dict
        Name -> {"type", "params"} of every stage of the graph (a sink finds its source's
        parameters there).
    out_dir : str
        Where a stage may write files (plots, captures), "" for none.
    state_dir : str
        A folder of this stage that outlives its process (journals a restarted stage restores
        from), "" for none. Kept across restarts, removed with the run.
    security : dict
        ``curve_secret_file`` (this stage's CurveZMQ key pair), ``bus_server_key`` (the bus
        proxy's public key when the bus runs CurveZMQ) and the ``[security]`` table's ``sdls_*``
        settings.
    """

    name: str
    type: str
    params: dict = field(default_factory=dict)
    link: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    bus_pub: str = ""
    bus_sub: str = ""
    epoch: int = 0
    peers: dict = field(default_factory=dict)
    out_dir: str = ""
    state_dir: str = ""
    security: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialize (endpoints as dicts)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> StageSpec:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        d["inputs"] = {k: Endpoint(**v) for k, v in d["inputs"].items()}
        d["outputs"] = {k: [Endpoint(**e) for e in v] for k, v in d["outputs"].items()}
        return cls(**d)


class StopRequested(Exception):
    """Raised inside a blocking send when the stage is asked to stop."""


class Stage:
    """Base class of every flowgraph stage; see the module notes.

    Parameters
    ----------
    spec : StageSpec
    context : zmq.Context, optional
        Shared context (in-process mode, where ``inproc://`` endpoints need one); default: the
        process's global context.

    Attributes
    ----------
    p : SimpleNamespace
        The checked parameters (``self.p.margin_db``).
    link : SimpleNamespace
        The flowgraph's ``[link]`` table.
    wire_stats : dict of str -> wire.WireStats
        Per input port, and "bus" for the subscriptions.
    counters : dict
        Stage-specific counters, published with the wire stats.
    """

    TYPE = ""
    PARAMS: dict[str, Param] = {}
    INPUTS: dict[str, Port] = {}
    OUTPUTS: dict[str, Port] = {}
    SUBSCRIBE: tuple[str, ...] = ()
    #: The runner stops these stages after all others (the monitor: it collects their summaries).
    STOP_LAST = False
    #: Subscribed topics that are commands (applied once, in order): their messages pass the
    #: control anti-replay check (:mod:`flowgraphs.control_seq`) and refusals are counted in
    #: ``control`` of the stats and summary. ``ctl.stop`` always is one.
    CONTROL_TOPICS: tuple[str, ...] = ()
    #: Largest accepted message on a non-IQ input, bytes, and IQ message, samples.
    MAX_MESSAGE_BYTES = wire.MAX_MESSAGE_BYTES
    MAX_IQ_SAMPLES = wire.MAX_IQ_SAMPLES

    def __init__(self, spec: StageSpec, context: zmq.Context | None = None):
        self.spec = spec
        self.name = spec.name
        self.epoch = spec.epoch
        self.p = SimpleNamespace(**spec.params)
        self.link = SimpleNamespace(**spec.link)
        self._ctx = context or zmq.Context.instance()
        self._own_ctx = context is None
        self._stop = threading.Event()
        self._finished = False
        self.wire_stats: dict[str, wire.WireStats] = {port: wire.WireStats() for port in spec.inputs}
        self.wire_stats["bus"] = wire.WireStats()
        self._seq_checks = {port: wire.SequenceCheck(self.wire_stats[port]) for port in spec.inputs}
        self._offset_checks = {port: wire.OffsetCheck(self.wire_stats[port]) for port in spec.inputs}
        self._bus_check = wire.SequenceCheck(self.wire_stats["bus"])
        self._writers: dict[str, wire.MessageWriter] = {}
        self._out_offset: dict[str, int] = {port: 0 for port in spec.outputs}
        self.counters: dict = {}
        self.started = time.monotonic()
        self.busy_s = 0.0
        self._cpu0 = None
        self._last_stats = 0.0
        self._in_socks: dict[str, zmq.Socket] = {}
        self._out_socks: dict[str, zmq.Socket] = {}
        self._pub = self._sub = None
        from flowgraphs.control_seq import ControlSequenceChecker

        self._control = ControlSequenceChecker(max_senders=256)
        self._control_topics = frozenset((*self.CONTROL_TOPICS, TOPIC_CTL))
        self._curve_pair = None
        self._curve_domains: list[str] = []
        self._handshakes: list = []
        self._auth = None

    # ------------------------------------------------------------------ hooks for subclasses

    def setup(self) -> None:
        """Called once the sockets are open, before the loop."""

    def on_iq(self, port: str, chunk: wire.IqChunk, gap: int) -> None:
        """An IQ message arrived on ``port``; ``gap`` samples were skipped since the previous one."""

    def on_message(self, port: str, msg: wire.Message) -> None:
        """A data message (bytes or frames) arrived on ``port``."""

    def on_bus(self, topic: str, body: dict) -> None:
        """A bus message on a subscribed topic."""

    def work(self) -> bool:
        """Produce output when the stage has some of its own to produce; return True if it did."""
        return False

    def wants_input(self, port: str) -> bool:
        """Whether to read ``port`` now (False leaves messages queued upstream: backpressure)."""
        return True

    def summary(self) -> dict:
        """Final counters of the stage (published on ``stage.summary`` at the end)."""
        return {}

    def teardown(self) -> None:
        """Called once after the loop, before the sockets close."""

    def configure_socket(self, sock: zmq.Socket, ep: Endpoint) -> None:
        """Set up a link socket before it binds or connects: CurveZMQ when ``ep.security`` asks.

        Called for every stream socket with its :class:`Endpoint`. With ``security["curve"]``
        the socket is a CURVE server (``role`` "server": accepts only the public keys in
        ``allowed``, counts every refused handshake) or a client (talks only to the holder of
        ``server_key``), with this stage's key pair (``spec.security["curve_secret_file"]``).
        """
        sec = ep.security or {}
        if not sec.get("curve"):
            return
        from flowgraphs import curve

        pair = self._keypair()
        if sec.get("role") == "server":
            if self._auth is None:
                self._auth = curve.authenticator_for(self._ctx)
            domain = curve.make_curve_server(sock, pair, sec.get("allowed", []), authenticator=self._auth)
            self._curve_domains.append(domain)
            self._handshakes.append(curve.HandshakeCounter(sock))
        else:
            curve.make_curve_client(sock, pair, sec["server_key"])

    def _keypair(self):
        """The stage's CurveZMQ key pair, read once from its secret file."""
        if self._curve_pair is None:
            from flowgraphs.keys import load_curve_keypair

            path = self.spec.security.get("curve_secret_file", "")
            if not path:
                raise ConfigError(f"stage {self.name!r}: a CurveZMQ link needs a key pair file")
            self._curve_pair = load_curve_keypair(path)
        return self._curve_pair

    def security_stats(self) -> dict:
        """CurveZMQ handshakes on this stage's server sockets: accepted and refused (by cause)."""
        for hc in self._handshakes:
            try:
                hc.drain(0)
            except zmq.ZMQError:
                pass
        hs = self._handshakes
        return {
            "curve_links": sum(
                1 for e in [*self.spec.inputs.values(), *(x for v in self.spec.outputs.values() for x in v)]
                if e.security.get("curve")
            ),  # fmt: skip
            "accepted": sum(h.succeeded for h in hs),
            "refused": sum(h.failed for h in hs),
            "refused_unknown_key": sum(h.failed_auth for h in hs),
            "refused_protocol": sum(h.failed_protocol + h.failed_other for h in hs),
        }

    # ------------------------------------------------------------------ API for subclasses

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the loop to end (thread-safe; what ``ctl.stop`` and the signals do)."""
        self._stop.set()

    def finish(self, **info) -> None:
        """Tell the runner this stage has done its job (``stage.done``), once."""
        if not self._finished:
            self._finished = True
            self.publish(TOPIC_DONE, {"stage": self.name, **info})

    def publish(self, topic: str, body: dict) -> None:
        """Publish a JSON message on the bus (dropped when there is no bus)."""
        if self._pub is None:
            return
        w = self._writers.setdefault("bus", wire.MessageWriter(self.name, self.epoch))
        msg = w.encode(wire.KIND_JSON, {"stage": self.name, **body})
        self._pub.send_multipart([topic.encode(), msg], copy=False)

    def out_offset(self, port: str) -> int:
        """Samples sent so far on IQ output ``port`` (the next message's stream offset)."""
        return self._out_offset[port]

    def set_out_offset(self, port: str, offset: int) -> None:
        """Continue IQ output ``port`` at stream offset ``offset`` (a stage that restarted mid-stream)."""
        self._out_offset[port] = int(offset)

    def send_iq(self, port: str, samples, tags=(), block: bool = True) -> bool:
        """Send IQ samples on ``port`` (every link of the port), tagged with the stream offset.

        Blocks while the downstream stage is full (backpressure); returns False if the stage is
        stopping or ``block`` is False and the link is full (nothing sent then).
        """
        offset = self._out_offset[port]
        n = len(samples)
        for ep, sock in zip(self.spec.outputs[port], self._out_socks[port], strict=True):
            data = wire.encode_iq(samples, offset if ep.tagged else None, tags if ep.tagged else ())
            if not self._send(sock, [data], block):
                return False
        self._out_offset[port] = offset + n
        return True

    def send_message(self, port: str, kind: int, body, block: bool = True) -> bool:
        """Send a wire message (JSON dict, bytes or frames) on ``port``; see :meth:`send_iq`."""
        w = self._writers.setdefault(port, wire.MessageWriter(self.name, self.epoch))
        data = w.encode(kind, body)
        for sock in self._out_socks[port]:
            if not self._send(sock, [data], block):
                w.seq -= 1  # not sent: the number is free again
                return False
        return True

    def log(self, text: str, level: str = "info") -> None:
        """A line for the runner's log (published on ``stage.log``, also written to stderr)."""
        print(f"[{self.name}] {text}", file=sys.stderr, flush=True)
        self.publish(TOPIC_LOG, {"level": level, "text": text})

    def input_pending(self, port: str) -> bool:
        """True when a message is waiting on input ``port``."""
        sock = self._in_socks.get(port)
        return bool(sock is not None and sock.poll(0, zmq.POLLIN))

    def output_ready(self, port: str) -> bool:
        """True when every link of output ``port`` would take a message now."""
        return all(s.poll(0, zmq.POLLOUT) for s in self._out_socks[port])

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Open the sockets, loop until stopped, publish the summary, close; return an exit status."""
        status = 0
        try:
            self._open()
            self.setup()
            self._loop()
        except StopRequested:
            pass
        except Exception:  # a crash: report it, let the runner decide (restart)
            self.log("crashed:\n" + traceback.format_exc(), level="error")
            status = 1
        try:
            self.teardown()
        except Exception:
            self.log("teardown failed:\n" + traceback.format_exc(), level="error")
            status = status or 1
        try:
            self._publish_stats()
            self.publish(
                TOPIC_SUMMARY,
                {
                    "type": self.TYPE,
                    "epoch": self.epoch,
                    "status": status,
                    "summary": self.summary(),
                    "wire": self._wire_dict(),
                    "control": self.control_stats(),
                    "security": self.security_stats(),
                    "cpu_s": time.thread_time() - self._cpu0 if self._cpu0 is not None else 0.0,
                    "busy_s": self.busy_s,
                    "uptime_s": time.monotonic() - self.started,
                },
            )
        except Exception:
            self.log("summary failed:\n" + traceback.format_exc(), level="error")
            status = status or 1
        self._close()
        return status

    def _open(self) -> None:
        ctx = self._ctx
        for port, ep in self.spec.inputs.items():
            s = ctx.socket(zmq.PULL)
            s.set_hwm(ep.hwm)
            s.linger = 0
            self.configure_socket(s, ep)
            (s.bind if ep.bind else s.connect)(ep.address)
            self._in_socks[port] = s
        for port, eps in self.spec.outputs.items():
            socks = []
            for ep in eps:
                s = ctx.socket(zmq.PUSH)
                s.set_hwm(ep.hwm)
                s.linger = 1000
                self.configure_socket(s, ep)
                (s.bind if ep.bind else s.connect)(ep.address)
                socks.append(s)
            self._out_socks[port] = socks
        bus_key = self.spec.security.get("bus_server_key", "")
        if self.spec.bus_pub:
            self._pub = ctx.socket(zmq.PUB)
            self._pub.sndhwm = 100_000
            self._pub.linger = 1000
            if bus_key:
                from flowgraphs.curve import make_curve_client

                make_curve_client(self._pub, self._keypair(), bus_key)
            self._pub.connect(self.spec.bus_pub)
        if self.spec.bus_sub:
            self._sub = ctx.socket(zmq.SUB)
            self._sub.rcvhwm = 100_000
            self._sub.linger = 0
            if bus_key:
                from flowgraphs.curve import make_curve_client

                make_curve_client(self._sub, self._keypair(), bus_key)
            self._sub.connect(self.spec.bus_sub)
            for topic in (*self.SUBSCRIBE, TOPIC_CTL):
                self._sub.subscribe(topic.encode())

    def _close(self) -> None:
        for hc in self._handshakes:
            hc.close()
        self._handshakes = []
        for s in [*self._in_socks.values(), *(x for v in self._out_socks.values() for x in v)]:
            s.close()
        for s in (self._pub, self._sub):
            if s is not None:
                s.close()
        if self._auth is not None and self._own_ctx:  # a process's own handler; a runner stops its own
            self._auth.stop()
            self._auth = None

    def _loop(self) -> None:
        self._cpu0 = time.thread_time()
        poll_ms = 20
        while not self._stop.is_set():
            rlist = [s for port, s in self._in_socks.items() if self.wants_input(port)]
            if self._sub is not None:
                rlist.append(self._sub)
            t0 = time.perf_counter()
            did = self.work()
            self.busy_s += time.perf_counter() - t0
            ready, _, _ = zmq.select(rlist, [], [], 0 if did else poll_ms / 1000)
            for sock in ready:
                self._drain(sock)
            now = time.monotonic()
            if now - self._last_stats >= _STATS_PERIOD_S:
                self._last_stats = now
                self._publish_stats()

    def _drain(self, sock: zmq.Socket, limit: int = 64) -> None:
        """Handle up to ``limit`` waiting messages of one socket."""
        if sock is self._sub:
            for _ in range(limit):
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    return
                self._handle_bus(parts)
            return
        port = next(p for p, s in self._in_socks.items() if s is sock)
        for _ in range(limit):
            if not self.wants_input(port):
                return
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            t0 = time.perf_counter()
            self._handle_input(port, frame)
            self.busy_s += time.perf_counter() - t0
            if self._stop.is_set():
                return

    def _handle_input(self, port: str, frame) -> None:
        kind = self.INPUTS[port].kind
        try:
            if kind == "iq":
                chunk = wire.decode_iq(frame, self.spec.inputs[port].tagged, self.MAX_IQ_SAMPLES)
                gap = self._offset_checks[port].check(chunk)
            else:
                msg = wire.decode_message(frame, self.MAX_MESSAGE_BYTES)
                self._seq_checks[port].check(msg)
        except wire.WireError as e:
            self._refused(port, e.reason, str(e))
            return
        except (ValueError, TypeError, RecursionError, OverflowError) as e:  # a decoder let one through
            self._refused(port, "malformed", f"{type(e).__name__}: {e}")
            return
        if kind == "iq":
            self.on_iq(port, chunk, gap)
        else:
            self.on_message(port, msg)

    def _refused(self, port: str, reason: str, text: str) -> None:
        """Count a refused message on input ``port`` ("bus" for the bus) and log the first ones."""
        stats = self.wire_stats[port]
        stats.count(reason)
        if stats.rejected <= 10 or stats.rejected % 1000 == 0:
            n = stats.rejected
            self.log(f"input {port!r}: refused a message ({text}); {n} refused so far", "warning")

    def _handle_bus(self, parts) -> None:
        """Handle one bus message; nothing from the bus stops the stage but a valid ``ctl.stop``.

        A malformed message, or one whose fields its handler cannot use, is counted and dropped.
        """
        if len(parts) != 2:
            self._refused("bus", "malformed", f"{len(parts)} message parts, expected 2")
            return
        try:
            topic = parts[0].bytes.decode()
            msg = wire.decode_message(parts[1], wire.MAX_JSON_BYTES + wire.HEADER_BYTES)
            if msg.kind != wire.KIND_JSON:
                raise wire.WireError("malformed", "bus messages must be JSON objects")
            if topic in self._control_topics:
                self._check_control(topic, msg)
            else:
                self._bus_check.check(msg)
        except wire.WireError as e:
            self._refused("bus", e.reason, str(e))
            return
        except (ValueError, TypeError, RecursionError, OverflowError) as e:  # UnicodeDecodeError too
            self._refused("bus", "malformed", f"{type(e).__name__}: {e}")
            return
        if topic == TOPIC_CTL:
            target = msg.body.get("target", "*")
            if isinstance(target, str) and target in ("*", self.name):
                self.request_stop()
            return
        try:
            self.on_bus(topic, msg.body)
        except _HANDLER_ERRORS as e:
            # a well-formed message with fields of the wrong type or range (e.g. an ack whose
            # "cum" is a string): refused like a malformed one, never a crash of the stage
            self._refused("bus", "malformed", f"topic {topic!r}: {type(e).__name__}: {e}")

    def _check_control(self, topic: str, msg: wire.Message) -> None:
        """Accept a command once and in order per (sender, topic), or raise WireError (counted)."""
        from flowgraphs.control_seq import ControlRejected

        try:
            self._control.check(f"{msg.sender:08x}:{topic}", msg.seq, msg.epoch)
        except ControlRejected as e:
            reason = "stale_epoch" if e.reason == "stale_epoch" else "out_of_order"
            raise wire.WireError(reason, f"control message on {topic!r}: {e}") from None
        self.wire_stats["bus"].accepted += 1

    def control_stats(self) -> dict:
        """Commands accepted and refused by the control anti-replay check, by reason."""
        return dict(self._control.counters)

    def _send(self, sock: zmq.Socket, parts, block: bool) -> bool:
        """Send, waiting while the link is full, serving the bus meanwhile; False if stopping."""
        while True:
            try:
                sock.send_multipart(parts, zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:
                if not block:
                    return False
            if self._stop.is_set():
                raise StopRequested
            # wait for room, but keep reading the bus (control, feedback) so that nothing piles up
            rlist = [self._sub] if self._sub is not None else []
            ready, wlist, _ = zmq.select(rlist, [sock], [], 0.05)
            if ready:
                self._drain(self._sub)
            now = time.monotonic()
            if now - self._last_stats >= _STATS_PERIOD_S:
                self._last_stats = now
                self._publish_stats()

    def _wire_dict(self) -> dict:
        return {port: s.as_dict() for port, s in self.wire_stats.items()}

    def _publish_stats(self) -> None:
        self.publish(
            TOPIC_STATS,
            {
                "type": self.TYPE,
                "epoch": self.epoch,
                "uptime_s": time.monotonic() - self.started,
                "busy_s": self.busy_s,
                "cpu_s": time.thread_time() - self._cpu0 if self._cpu0 is not None else 0.0,
                "counters": self.counters,
                "wire": self._wire_dict(),
                "control": self.control_stats(),
                "security": self.security_stats(),
            },
        )


# ---------------------------------------------------------------------------------------------
# process entry point


def main(argv=None) -> int:
    """Run one stage from its spec file: ``python -m flowgraphs.stage SPEC.json``."""
    from flowgraphs.stages import stage_class

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m flowgraphs.stage SPEC.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        spec = StageSpec.from_json(f.read())
    stage = stage_class(spec.type)(spec)

    def on_signal(signum, frame):
        stage.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _watch_parent(stage)
    return stage.run()


def _watch_parent(stage: Stage) -> None:
    """Stop the stage if the runner that started it dies (its stages would otherwise linger)."""
    import os

    parent = int(os.environ.get("MARSLINK_PARENT_PID", "0") or 0)
    if not parent:
        return

    def watch():
        while not stage.stopping:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                stage.request_stop()
                time.sleep(10)
                os._exit(3)  # the loop did not end: leave anyway
            except PermissionError:
                pass
            time.sleep(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
