"""Flowgraph files (TOML), their validation, and the runner that starts and supervises the stages.

A flowgraph file names stages, their parameters and the links between their ports:

.. code-block:: toml

    [graph]
    name = "awgn_loopback"
    description = "PRBS bytes -> DVB-S2 TX -> AWGN -> RX -> sink"

    [link]                      # shared by every stage
    symbol_rate_hz = 2.5e6
    samples_per_symbol = 2

    [run]
    until = ["tx"]              # the run ends when these stages report done

    [stages.src]
    type = "source"             # flowgraphs/stages/source.py
    pattern = "prbs"

    [stages.tx]
    type = "tx"
    modcod = "QPSK 1/2"

    [[connect]]
    from = "src.out"            # stage.port
    to = "tx.data"

Links are ``ipc://`` endpoints in a private run folder by default (``[run] transport = "tcp"``
puts them on 127.0.0.1 ports; a link may also give its own ``endpoint``, e.g. to span machines).
The sending side binds, as GNU Radio's zeromq sinks do, unless ``bind = "to"``. A link with only
``from`` or only ``to`` leads outside the graph (to a GNU Radio flowgraph, say) and needs an
``endpoint``; ``tagged = false`` drops the gr-zeromq tag header (``pass_tags=False``).

An optional ``[security]`` table (:data:`SECURITY_PARAMS`) sets CurveZMQ on the links and the
bus (``curve``: "auto", the default, is on for tcp:// and off for ipc:// and inproc://; a link
may say ``curve = true/false`` itself; links to the outside of the graph are off unless they say
``curve = true`` and give the peer's ``peer_key``), where the stages' key pairs come from
(``key_dir``, pairs made with ``marslink keys create NAME``; default: fresh pairs per run in the
run folder, mode 0600) and SDLS frame protection of the user frames (``sdls_key_file``).

:func:`load_graph` checks everything it can before anything starts: an error names the file,
the stage and the key. :class:`Runner` runs a graph either with one process per stage
(``mode="process"``, the default: stages started as ``python -m flowgraphs.stage``, restarted
when they crash, stopped with ``ctl.stop`` on the bus, then SIGTERM, then SIGKILL) or with one
thread per stage in this process (``mode="thread"``, for tests), through the same code.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from flowgraphs import wire
from flowgraphs.stage import (
    TOPIC_CTL,
    TOPIC_DONE,
    TOPIC_LOG,
    TOPIC_STATS,
    TOPIC_SUMMARY,
    ConfigError,
    Endpoint,
    Param,
    StageSpec,
)
from flowgraphs.stages import stage_class, stage_types

GRAPHS_DIR = Path(__file__).resolve().parent / "graphs"

#: The ``[link]`` table: parameters every stage may read.
LINK_PARAMS = {
    "symbol_rate_hz": Param(2.5e6, float, "symbol rate", lo=1.0, hi=1e10, unit="Hz"),
    "samples_per_symbol": Param(2, int, "samples per symbol of the IQ streams", lo=2, hi=64),
    "frame": Param("normal", str, "DVB-S2 FECFRAME size", choices=("normal", "short")),
    "pilots": Param(True, bool, "DVB-S2 pilot blocks"),
    "stream": Param(
        "gs",
        str,
        "DVB-S2 input stream: generic continuous (marslink user frames) or MPEG-TS",
        choices=("gs", "ts"),
    ),
    "rolloff": Param(0.35, float, "RRC roll-off", choices=(0.35, 0.25, 0.2)),
    "gold_code": Param(0, int, "PL scrambling code number", lo=0, hi=262141),
    "time_scale": Param(1.0, float, "scenario seconds per stream second", lo=1e-6, hi=1e6),
    "scenario": Param("", str, "scenario name or file ('' for none)"),
    "scenario_link": Param("", str, "link of the scenario ('' for its first)"),
    "start_s": Param(0.0, float, "scenario time at stream sample 0", lo=0.0, unit="s"),
    "duration_s": Param(0.0, float, "scenario seconds to run (0: the whole scenario)", lo=0.0, unit="s"),
    "seed": Param(2026, int, "base random seed of the run", lo=0),
}

#: The ``[run]`` table.
RUN_PARAMS = {
    "until": Param([], list, "stages whose 'done' ends the run (none: run until stopped)"),
    "max_restarts": Param(3, int, "restarts allowed per stage", lo=0, hi=1000),
    "transport": Param(
        "ipc",
        str,
        "links between stages (inproc: thread mode, no restarts)",
        choices=("ipc", "tcp", "inproc"),
    ),
    "stop_timeout_s": Param(10.0, float, "wait for a stage to stop before SIGTERM", lo=0.1, unit="s"),
    "wall_limit_s": Param(0.0, float, "stop the run after this wall time (0: none)", lo=0.0, unit="s"),
}

#: The ``[security]`` table: link authentication and frame protection.
SECURITY_PARAMS = {
    "curve": Param(
        "auto",
        (str, bool),
        "CurveZMQ on links between stages and on the bus: true, false or 'auto' (on for tcp://)",
        choices=("auto", True, False),
    ),
    "key_dir": Param(
        "",
        str,
        "directory of `marslink keys` pairs named after the stages ('': fresh keys for each run)",
    ),
    "sdls_key_file": Param("", str, "SDLS AES-256 key file: protect every user frame ('': off)"),
    "sdls_spi": Param(1, int, "SDLS security parameter index", lo=0, hi=0xFFFF),
    "sdls_encrypt": Param(True, bool, "SDLS: encrypt and authenticate (false: authenticate only)"),
    "sdls_window": Param(1024, int, "SDLS anti-replay window", lo=1, hi=1 << 20, unit="frames"),
}

_TOP_KEYS = ("graph", "link", "run", "security", "stages", "connect")
_CONNECT_KEYS = ("from", "to", "endpoint", "bind", "tagged", "hwm", "curve", "peer_key")


@dataclass
class Link:
    """One stream link. ``src``/``dst`` are (stage, port) or None for the outside world."""

    src: tuple[str, str] | None
    dst: tuple[str, str] | None
    endpoint: str = ""
    bind: str = "from"
    tagged: bool = True
    hwm: int = 16
    curve: bool | None = None
    peer_key: str = ""


@dataclass
class Graph:
    """A checked flowgraph.

    Attributes
    ----------
    source : str
        File it came from (or "<text>").
    name, description : str
    link, run : dict
        Checked ``[link]`` and ``[run]`` tables, defaults filled in.
    stages : dict of str -> (type, params)
        Params checked, defaults filled in.
    links : list of Link
    security : dict
        Checked ``[security]`` table.
    """

    source: str
    name: str
    description: str
    link: dict
    run: dict
    stages: dict
    links: list = field(default_factory=list)
    security: dict = field(default_factory=dict)

    def stage_type(self, name: str) -> str:
        """Type of stage ``name``."""
        return self.stages[name][0]


def graph_path(name_or_path: str) -> Path:
    """Path of a flowgraph: a file, or the name of a shipped graph in ``flowgraphs/graphs/``."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = GRAPHS_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(f.stem for f in GRAPHS_DIR.glob("*.toml")))
    raise ConfigError(f"{name_or_path}: no such flowgraph file, nor a shipped flowgraph ({names})")


def load_graph(source, overrides: list[str] | None = None) -> Graph:
    """Read and check a flowgraph.

    Parameters
    ----------
    source : str, Path or dict
        A TOML file, a shipped graph's name, or an already parsed table (tests).
    overrides : list of str, optional
        ``"stage.key=value"``, ``"link.key=value"`` or ``"run.key=value"``; the value is parsed as a
        TOML value (a bare word is taken as a string).

    Raises
    ------
    ConfigError
        Anything wrong, with the file, stage and key in the message.
    """
    if isinstance(source, dict):
        where, table = "<table>", copy.deepcopy(source)
    else:
        path = graph_path(str(source))
        where = str(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            bad = f"byte {e.start} is 0x{e.object[e.start]:02X}"
            raise ConfigError(f"{where}: not UTF-8 text (TOML must be): {bad}") from None
        except OSError as e:
            raise ConfigError(f"{where}: cannot read: {e.strerror or e}") from None
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{where}: not valid TOML: {e}") from e
    for item in overrides or []:
        _apply_override(table, item, where)
    return check_graph(table, where)


def _apply_override(table: dict, item: str, where: str) -> None:
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"{where}: override {item!r} must look like stage.key=value, link.key=value or run.key=value"
        )
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    head, k = parts
    if head in ("link", "run", "graph", "security"):
        sub = table.setdefault(head, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{where}: override {item!r}: [{head}] must be a table; got {sub!r}")
        sub[k] = value
    else:
        stages = table.get("stages", {})
        if not isinstance(stages, dict):
            raise ConfigError(f"{where}: override {item!r}: [stages] must be a table; got {stages!r}")
        if head not in stages:
            names = ", ".join(map(str, stages))
            raise ConfigError(f"{where}: override {item!r}: no stage {head!r}; stages: {names}")
        if not isinstance(stages[head], dict):
            got = stages[head]
            raise ConfigError(f"{where}: override {item!r}: stage {head!r} must be a table; got {got!r}")
        stages[head][k] = value


def _check_table(values: dict, params: dict, where: str) -> dict:
    out = {}
    for k, v in values.items():
        if k not in params:
            raise ConfigError(f"{where}: key {k!r}: unknown; known keys: {', '.join(params)}")
        out[k] = params[k].check(v, f"{where}: key {k!r}")
    for k, prm in params.items():
        out.setdefault(k, copy.deepcopy(prm.default))
    return out


def check_graph(table: dict, where: str = "<table>") -> Graph:
    """Check a parsed flowgraph table; see :func:`load_graph`."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: a flowgraph must be a TOML table")
    for k in table:
        if k not in _TOP_KEYS:
            raise ConfigError(f"{where}: unknown top-level key {k!r}; known: {', '.join(_TOP_KEYS)}")
    meta = table.get("graph", {})
    if not isinstance(meta, dict):
        raise ConfigError(f"{where}: [graph] must be a table")
    for k in meta:
        if k not in ("name", "description"):
            raise ConfigError(f"{where}: [graph]: key {k!r}: unknown; known keys: name, description")
    name = meta.get("name", Path(where).stem if where != "<table>" else "graph")
    link = _check_table(_as_table(table.get("link", {}), f"{where}: [link]"), LINK_PARAMS, f"{where}: [link]")
    run = _check_table(_as_table(table.get("run", {}), f"{where}: [run]"), RUN_PARAMS, f"{where}: [run]")
    security = _check_table(
        _as_table(table.get("security", {}), f"{where}: [security]"), SECURITY_PARAMS, f"{where}: [security]"
    )
    for k in ("sdls_key_file", "key_dir"):  # '~' from --set or a TOML file means the home folder
        if isinstance(security.get(k), str) and security[k].startswith("~"):
            security[k] = os.path.expanduser(security[k])
    if security["sdls_key_file"]:
        from flowgraphs.keys import load_sdls_key

        try:
            load_sdls_key(security["sdls_key_file"])
        except (OSError, ValueError) as e:
            raise ConfigError(f"{where}: [security]: key 'sdls_key_file': {e}") from None
    raw_stages = _as_table(table.get("stages", {}), f"{where}: [stages]")
    if not raw_stages:
        raise ConfigError(f"{where}: [stages]: a flowgraph needs at least one stage")
    stages = {}
    for sname, body in raw_stages.items():
        sw = f"{where}: stage {sname!r}"
        if not sname.replace("_", "").isalnum() or not sname[0].isalpha():
            raise ConfigError(f"{sw}: stage names must be letters, digits and '_', starting with a letter")
        body = dict(_as_table(body, sw))
        if "type" not in body:
            raise ConfigError(f"{sw}: key 'type' is missing; stage types: {', '.join(stage_types())}")
        stype = body.pop("type")
        try:
            cls = stage_class(stype)
        except ValueError as e:
            raise ConfigError(f"{sw}: key 'type': {e}") from None
        params = _check_table(body, cls.PARAMS, sw)
        stages[sname] = (stype, params)
    for s in run["until"]:
        if not isinstance(s, str):
            raise ConfigError(f"{where}: [run]: key 'until': items must be stage names (strings); got {s!r}")
        if s not in stages:
            raise ConfigError(f"{where}: [run]: key 'until': no stage {s!r}; stages: {', '.join(stages)}")
    links = _check_links(table.get("connect", []), stages, where)
    g = Graph(where, name, meta.get("description", ""), link, run, stages, links, security)
    for sname, (stype, params) in stages.items():
        check = getattr(stage_class(stype), "check_params", None)
        if check is not None:
            try:
                check(params, link)
            except ConfigError as e:
                raise ConfigError(f"{where}: stage {sname!r}: {e}") from None
    return g


def _as_table(x, where: str) -> dict:
    if not isinstance(x, dict):
        raise ConfigError(f"{where}: must be a table")
    return x


def _port(ref, stages: dict, direction: str, where: str) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(".") != 1:
        raise ConfigError(f"{where}: key {direction!r}: must be 'stage.port'; got {ref!r}")
    sname, port = ref.split(".")
    if sname not in stages:
        raise ConfigError(f"{where}: key {direction!r}: no stage {sname!r}; stages: {', '.join(stages)}")
    cls = stage_class(stages[sname][0])
    ports = cls.OUTPUTS if direction == "from" else cls.INPUTS
    if port not in ports:
        what = "output" if direction == "from" else "input"
        raise ConfigError(
            f"{where}: key {direction!r}: stage {sname!r} ({stages[sname][0]}) has no {what} port {port!r}; "
            f"its {what}s: {', '.join(ports) or 'none'}"
        )
    return sname, port


def _check_links(raw, stages: dict, where: str) -> list[Link]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: [[connect]] must be an array of tables")
    links = []
    fed: dict[tuple[str, str], int] = {}
    for i, c in enumerate(raw):
        cw = f"{where}: connect #{i + 1}"
        c = _as_table(c, cw)
        for k in c:
            if k not in _CONNECT_KEYS:
                raise ConfigError(f"{cw}: key {k!r}: unknown; known keys: {', '.join(_CONNECT_KEYS)}")
        if "from" not in c and "to" not in c:
            raise ConfigError(f"{cw}: needs 'from', 'to' or both")
        src = _port(c["from"], stages, "from", cw) if "from" in c else None
        dst = _port(c["to"], stages, "to", cw) if "to" in c else None
        endpoint = c.get("endpoint", "")
        if not isinstance(endpoint, str) or (endpoint and "://" not in endpoint):
            raise ConfigError(f"{cw}: key 'endpoint': must be a ZeroMQ endpoint like 'tcp://127.0.0.1:5555'")
        if (src is None or dst is None) and not endpoint:
            raise ConfigError(f"{cw}: key 'endpoint': a link to the outside of the graph needs an endpoint")
        bind = c.get("bind", "from" if src is not None else "to")
        if bind not in ("from", "to"):
            raise ConfigError(f"{cw}: key 'bind': must be 'from' or 'to'; got {bind!r}")
        tagged = c.get("tagged", True)
        if not isinstance(tagged, bool):
            raise ConfigError(f"{cw}: key 'tagged': must be true or false; got {tagged!r}")
        hwm = Param(16, int, "", lo=1, hi=1 << 20).check(c.get("hwm", 16), f"{cw}: key 'hwm'")
        curve = c.get("curve")
        if curve is not None and not isinstance(curve, bool):
            raise ConfigError(f"{cw}: key 'curve': must be true or false; got {curve!r}")
        peer_key = c.get("peer_key", "")
        if peer_key:
            from flowgraphs.curve import z85_key

            try:
                peer_key = z85_key(peer_key, "peer_key").decode()
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{cw}: key 'peer_key': {e}") from None
        if curve and (src is None or dst is None) and not peer_key:
            raise ConfigError(
                f"{cw}: key 'peer_key': a CurveZMQ link to the outside of the graph needs the peer's "
                "public key (40 Z85 characters)"
            )
        if src and dst:
            k_src = stage_class(stages[src[0]][0]).OUTPUTS[src[1]].kind
            k_dst = stage_class(stages[dst[0]][0]).INPUTS[dst[1]].kind
            if k_src != k_dst:
                raise ConfigError(f"{cw}: {c['from']} gives {k_src} but {c['to']} takes {k_dst}")
        if dst is not None:
            fed[dst] = fed.get(dst, 0) + 1
            if fed[dst] > 1:
                raise ConfigError(f"{cw}: key 'to': input {c['to']} is already fed by another link")
        links.append(Link(src, dst, endpoint, bind, tagged, hwm, curve, peer_key))
    return links


# ---------------------------------------------------------------------------------------------
# endpoints and specs


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def link_uses_curve(graph: Graph, ln: Link, address: str) -> bool:
    """Whether link ``ln`` at ``address`` runs CurveZMQ.

    The link's own ``curve`` if given, else the ``[security] curve`` setting, where "auto" means
    on for tcp:// (and other network) endpoints and off for ipc:// and inproc://. A link to the
    outside of the graph (a GNU Radio zeromq block, which has no CURVE support) is off unless the
    link says ``curve = true`` and gives the peer's public key.
    """
    from flowgraphs.curve import curve_enabled

    if ln.src is None or ln.dst is None:
        return bool(ln.curve)
    setting = ln.curve
    if setting is None:
        mode = graph.security.get("curve", "auto")
        setting = None if mode == "auto" else bool(mode)
    return curve_enabled(address, setting)


def bus_uses_curve(graph: Graph, transport: str) -> bool:
    """Whether the bus runs CurveZMQ: per ``[security] curve``, "auto" on for the tcp transport."""
    mode = graph.security.get("curve", "auto")
    return transport == "tcp" if mode == "auto" else bool(mode) and transport != "inproc"


def stage_specs(
    graph: Graph,
    transport: str,
    run_dir: str,
    out_dir: str,
    bus: tuple[str, str],
    keyring=None,
) -> dict:
    """One StageSpec per stage with concrete endpoints (for ``transport`` ipc, tcp or inproc).

    ``keyring`` (a :class:`Keyring`) gives the stages' CurveZMQ keys; it is needed when a link or
    the bus uses CurveZMQ (:func:`link_uses_curve`). Each stage's state folder is
    ``run_dir/state/NAME`` (journals that survive a restart of the stage).
    """
    peers = {n: {"type": t, "params": p} for n, (t, p) in graph.stages.items()}
    specs = {
        n: StageSpec(
            name=n,
            type=t,
            params=p,
            link=dict(graph.link),
            bus_pub=bus[0],
            bus_sub=bus[1],
            peers=peers,
            out_dir=out_dir,
            outputs={port: [] for port in stage_class(t).OUTPUTS},
            state_dir=os.path.join(run_dir, "state", n),
            security=_stage_security(graph, n, keyring),
        )
        for n, (t, p) in graph.stages.items()
    }
    run_id = os.path.basename(run_dir)
    for i, ln in enumerate(graph.links):
        if ln.endpoint:
            addr = ln.endpoint
        elif transport == "ipc":
            addr = f"ipc://{run_dir}/l{i}"
        elif transport == "tcp":
            addr = f"tcp://127.0.0.1:{_free_tcp_port()}"
        else:
            addr = f"inproc://{run_id}/l{i}"
        src_sec, dst_sec = {}, {}
        if link_uses_curve(graph, ln, addr):
            if keyring is None:
                raise ConfigError(f"{graph.source}: link {i + 1} uses CurveZMQ: the stages need keys")
            src_pub = keyring.public(ln.src[0]) if ln.src else ln.peer_key
            dst_pub = keyring.public(ln.dst[0]) if ln.dst else ln.peer_key
            server_is_src = ln.bind == "from"
            server_pub = src_pub if server_is_src else dst_pub
            client_pub = dst_pub if server_is_src else src_pub
            server = {"curve": True, "role": "server", "allowed": [client_pub]}
            client = {"curve": True, "role": "client", "server_key": server_pub}
            src_sec, dst_sec = (server, client) if server_is_src else (client, server)
        if ln.src is not None:
            specs[ln.src[0]].outputs[ln.src[1]].append(
                Endpoint(addr, ln.bind == "from", ln.tagged, ln.hwm, src_sec)
            )
        if ln.dst is not None:
            specs[ln.dst[0]].inputs[ln.dst[1]] = Endpoint(addr, ln.bind == "to", ln.tagged, ln.hwm, dst_sec)
    return specs


def _stage_security(graph: Graph, name: str, keyring) -> dict:
    sec = {k: v for k, v in graph.security.items() if k.startswith("sdls_")}
    if sec.get("sdls_key_file"):
        sec["sdls_key_file"] = os.path.abspath(sec["sdls_key_file"])
    if keyring is not None:
        sec["curve_secret_file"] = str(keyring.secret_file(name))
        if keyring.bus_key:
            sec["bus_server_key"] = keyring.bus_key
    return sec


class Keyring:
    """The CurveZMQ key pairs of a run's stages (and of the runner, which hosts the bus).

    With ``key_dir`` the pairs are read from ``marslink keys`` files named after the stages
    (``NAME.key_secret``); without it a fresh pair per stage is made for the run in
    ``run_dir/keys`` (mode 0700, secret files 0600), removed with the run folder. Only public
    keys travel in the stage specs; each stage reads its own secret file.
    """

    def __init__(self, names, run_dir: str, key_dir: str = ""):
        from flowgraphs import keys

        self.dir = Path(key_dir) if key_dir else Path(run_dir) / "keys"
        self.pairs = {}
        self.bus_key = ""
        for n in [*names, "runner"]:
            if key_dir and n != "runner":
                try:
                    pair = keys.load_curve_keypair(n, self.dir)
                except (OSError, ValueError) as e:
                    raise ConfigError(
                        f"[security] key_dir: no usable key pair for stage {n!r} ({e}); "
                        f"create it with: marslink keys create {n} --dir {key_dir}"
                    ) from None
                self.pairs[n] = (pair, self.dir / (n + keys.SECRET_SUFFIX))
            else:
                d = Path(run_dir) / "keys"
                pair = keys.create_curve_keypair(n, d, overwrite=True)
                self.pairs[n] = (pair, d / (n + keys.SECRET_SUFFIX))

    def public(self, name: str) -> str:
        """Z85 public key of stage ``name``."""
        return self.pairs[name][0].public.decode()

    def secret_file(self, name: str) -> Path:
        """Path of the secret key file of stage ``name``."""
        return self.pairs[name][1]

    def pair(self, name: str):
        """The key pair of ``name`` (the runner's: ``"runner"``)."""
        return self.pairs[name][0]

    def publics(self) -> list[str]:
        """Every public key (the stages' and the runner's)."""
        return [p.public.decode() for p, _ in self.pairs.values()]


# ---------------------------------------------------------------------------------------------
# the runner


@dataclass
class StageRecord:
    """What the runner knows of one stage during and after a run."""

    name: str
    type: str
    epoch: int = 0
    restarts: int = 0
    exit_codes: list = field(default_factory=list)
    done: bool = False
    summary: dict | None = None
    stats: dict | None = None
    handle: object = None  # Popen or (thread, stage)
    running: bool = False


@dataclass
class RunResult:
    """Outcome of :meth:`Runner.run`.

    Attributes
    ----------
    status : int
        0: every stage stopped cleanly and no byte was lost; 1: a stage failed for good or left
        no summary, the wall-time limit stopped the run, bytes were lost or the byte accounting
        is inconsistent (see ``problems``); 130: interrupted (SIGINT/SIGTERM).
    stages : dict of str -> StageRecord
    wall_s : float
    reason : str
        Why the run ended ("done", "interrupted", "wall limit", "stage failed", "stopped").
    out_dir : str
    problems : list of str
        Why ``status`` is not 0 (also added to the monitor's report as ``problems``).
    bus_security : dict
        CurveZMQ on the bus (``curve``, handshakes ``accepted`` and ``refused``).
    """

    status: int
    stages: dict
    wall_s: float
    reason: str
    out_dir: str
    problems: list = field(default_factory=list)
    bus_security: dict = field(default_factory=dict)

    def summary(self, name: str) -> dict:
        """Final summary of stage ``name`` ({} when it left none)."""
        rec = self.stages.get(name)
        return (rec.summary or {}).get("summary", {}) if rec else {}


class _Interrupted(Exception):
    pass


class Runner:
    """Start, supervise and stop the stages of a graph.

    Parameters
    ----------
    graph : Graph
    mode : {"process", "thread"}
        One process per stage, or one thread per stage in this process (tests).
    out_dir : str or Path, optional
        Output folder handed to the stages ("" for none).
    on_progress : callable, optional
        Called with every ``mon.progress`` body and with ``None`` periodically (for redraws).
    on_log : callable, optional
        Called with (stage, level, text) for every stage log line and runner event.
    """

    def __init__(self, graph: Graph, mode: str = "process", out_dir="", on_progress=None, on_log=None):
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread'; got {mode!r}")
        self.graph = graph
        self.mode = mode
        self.out_dir = str(out_dir)
        self.on_progress = on_progress
        self.on_log = on_log or (lambda stage, level, text: None)
        transport = graph.run["transport"]
        if mode == "process" and transport == "inproc":
            raise ConfigError(
                f"{graph.source}: [run]: key 'transport': 'inproc' needs the in-process (thread) mode"
            )
        # inproc links do not reconnect to a stage that restarts and binds again: ipc (the default)
        # works in both modes
        self.transport = transport
        self.records = {n: StageRecord(n, t) for n, (t, _) in graph.stages.items()}
        self._ctx = zmq.Context()
        self._stop_requested = False
        self.kill_hook = None  # tests: called with the runner on every supervision tick

    # -- public

    def stop(self) -> None:
        """Ask a running :meth:`run` (in another thread) to stop the graph and return."""
        self._stop_requested = True

    def pid(self, stage: str) -> int | None:
        """Process id of a running stage (process mode)."""
        h = self.records[stage].handle
        return h.pid if isinstance(h, subprocess.Popen) and h.poll() is None else None

    def run(self) -> RunResult:
        """Run the graph to its end; see :class:`RunResult`."""
        t0 = time.monotonic()
        run_dir = tempfile.mkdtemp(prefix="mlk-")
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
        self.keyring = None
        if self._needs_keys():
            try:
                self.keyring = Keyring(list(self.records), run_dir, self.graph.security.get("key_dir", ""))
            except ConfigError:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
        self._bus_curve = bus_uses_curve(self.graph, self.transport)
        if self._bus_curve:
            self.keyring.bus_key = self.keyring.public("runner")
        bus = self._start_bus(run_dir)
        self._specs = stage_specs(self.graph, self.transport, run_dir, self.out_dir, bus, self.keyring)
        self._run_dir = run_dir
        old = self._install_signals()
        reason = "done"
        try:
            for name in self.records:
                self._start(name)
            reason = self._supervise(t0)
        except _Interrupted:
            reason = "interrupted"
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            self._restore_signals(old)
            try:
                self._stop_all()
            finally:
                self._stop_bus()
                shutil.rmtree(run_dir, ignore_errors=True)
        wall = time.monotonic() - t0
        failed = [r for r in self.records.values() if r.summary is None or r.summary.get("status", 0) != 0]
        problems = []
        if reason == "stage failed":
            problems.append("a stage failed with no restarts left")
        elif reason == "wall limit":
            problems.append(f"wall-time limit of {self.graph.run['wall_limit_s']:g} s reached")
        if failed and reason != "stopped":
            problems.append("no clean summary from " + ", ".join(r.name for r in failed))
        problems += self._byte_problems()
        if reason == "interrupted":
            status = 130
        elif problems:
            status = 1
        else:
            status = 0
        if problems:
            self.on_log("runner", "error", "run failed: " + "; ".join(problems))
            for rec in self.records.values():
                report = ((rec.summary or {}).get("summary") or {}).get("report")
                if isinstance(report, dict):
                    report["problems"] = problems
        bus_sec = getattr(self, "_final_bus_security", {"curve": False, "accepted": 0, "refused": 0})
        return RunResult(status, self.records, wall, reason, self.out_dir, problems, bus_sec)

    def _needs_keys(self) -> bool:
        """Whether any link or the bus will use CurveZMQ (then every stage gets a key pair)."""
        g = self.graph
        if bus_uses_curve(g, self.transport) or any(ln.curve for ln in g.links):
            return True
        if g.security.get("curve") is False or self.transport == "inproc":
            return False
        return self.transport == "tcp" or any(
            ln.endpoint and ln.src and ln.dst and link_uses_curve(g, ln, ln.endpoint) for ln in g.links
        )

    @property
    def bus_security(self) -> dict:
        """CurveZMQ on the bus: handshakes accepted and refused by the runner's proxy sockets."""
        counters = getattr(self, "_bus_handshakes", [])
        for hc in counters:
            try:
                hc.drain(0)
            except zmq.ZMQError:
                pass
        return {
            "curve": bool(getattr(self, "_bus_curve", False)),
            "accepted": sum(hc.succeeded for hc in counters),
            "refused": sum(hc.failed for hc in counters),
        }

    def _byte_problems(self) -> list[str]:
        """Lost bytes or inconsistent accounting ([] when none, or no tx and sink to account).

        From the monitor's report, or else from the transmitter's and the sink's summaries.
        """
        from flowgraphs.report import byte_accounts, byte_problems

        summ = {n: (r.summary or {}).get("summary") or {} for n, r in self.records.items()}
        for s in summ.values():
            b = s.get("report", {}).get("bytes") if isinstance(s.get("report"), dict) else None
            if isinstance(b, dict):
                return byte_problems(b)
        txs = [s for s in summ.values() if "bytes_offered" in s and "held_bytes" in s]
        sinks = [summ[n] for n, r in self.records.items() if r.type == "sink" and summ[n]]
        if len(txs) != 1 or len(sinks) != 1:
            return []
        return byte_problems(byte_accounts(txs[0], sinks[0]))

    # -- bus

    def _start_bus(self, run_dir: str) -> tuple[str, str]:
        ctx = self._ctx
        if self.transport == "inproc":
            pub_addr, sub_addr = (
                f"inproc://{os.path.basename(run_dir)}/bus-in",
                f"inproc://{os.path.basename(run_dir)}/bus-out",
            )
        elif self.transport == "ipc":
            pub_addr, sub_addr = f"ipc://{run_dir}/bus-in", f"ipc://{run_dir}/bus-out"
        else:
            pub_addr, sub_addr = (f"tcp://127.0.0.1:{_free_tcp_port()}" for _ in range(2))
        xsub = ctx.socket(zmq.XSUB)
        xsub.rcvhwm = 0
        xpub = ctx.socket(zmq.XPUB)
        xpub.sndhwm = 0
        self._bus_handshakes = []
        if self._bus_curve:
            from flowgraphs.curve import HandshakeCounter, authenticator_for, make_curve_server

            auth = authenticator_for(ctx)
            for s in (xsub, xpub):
                make_curve_server(s, self.keyring.pair("runner"), self.keyring.publics(), authenticator=auth)
                self._bus_handshakes.append(HandshakeCounter(s))
        xsub.bind(pub_addr)
        xpub.bind(sub_addr)
        ctl_addr = f"inproc://bus-ctl-{id(self)}"
        ctl = ctx.socket(zmq.PAIR)
        ctl.bind(ctl_addr)
        self._bus_ctl = ctl

        def proxy():
            c = ctx.socket(zmq.PAIR)
            c.connect(ctl_addr)
            try:
                zmq.proxy_steerable(xsub, xpub, None, c)
            except zmq.ContextTerminated:
                pass
            finally:
                for s in (xsub, xpub, c):
                    s.close(linger=0)

        self._proxy = threading.Thread(target=proxy, name="bus-proxy", daemon=True)
        self._proxy.start()
        self._sub = ctx.socket(zmq.SUB)
        self._sub.rcvhwm = 0
        self._pub = ctx.socket(zmq.PUB)
        if self._bus_curve:
            from flowgraphs.curve import make_curve_client

            for s in (self._sub, self._pub):
                make_curve_client(s, self.keyring.pair("runner"), self.keyring.bus_key)
        self._sub.connect(sub_addr)
        for t in ("stage.", "mon.progress"):
            self._sub.subscribe(t.encode())
        self._pub.connect(pub_addr)
        self._writer = wire.MessageWriter("runner")
        time.sleep(0.05)  # let the runner's own subscription reach the proxy
        return pub_addr, sub_addr

    def _stop_bus(self) -> None:
        try:
            self._bus_ctl.send(b"TERMINATE")
        except zmq.ZMQError:
            pass
        self._proxy.join(timeout=2)
        self._final_bus_security = self.bus_security
        for hc in self._bus_handshakes:
            hc.close()
        self._bus_handshakes = []
        for s in (self._sub, self._pub, self._bus_ctl):
            s.close(linger=0)
        specs = getattr(self, "_specs", {}).values()
        if self._bus_curve or any(s.security.get("curve_secret_file") for s in specs):
            from flowgraphs.curve import _registry, _registry_lock

            with _registry_lock:
                auth = _registry.get(id(self._ctx))
            if auth is not None and auth.context is self._ctx:
                auth.stop()
        if any(r.running for r in self.records.values()):
            self._ctx.destroy(linger=0)  # a stage thread that would not stop
        else:
            self._ctx.term()

    def _publish_ctl(self, target: str) -> None:
        msg = self._writer.encode(wire.KIND_JSON, {"stage": "runner", "target": target})
        self._pub.send_multipart([TOPIC_CTL.encode(), msg])

    def _read_bus(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not self._sub.poll(int(left * 1000)):
                return
            while True:
                try:
                    topic, data = self._sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                except ValueError:
                    continue
                try:
                    body = wire.decode_message(data, wire.MAX_JSON_BYTES + wire.HEADER_BYTES).body
                except wire.WireError:
                    continue
                if isinstance(body, dict):
                    self._on_bus(topic.decode(errors="replace"), body)
            if time.monotonic() >= deadline:
                return

    def _on_bus(self, topic: str, body: dict) -> None:
        rec = self.records.get(body.get("stage", ""))
        if topic == "mon.progress":
            if self.on_progress:
                self.on_progress(body)
        elif rec is None:
            return
        elif topic == TOPIC_DONE:
            rec.done = True
        elif topic == TOPIC_SUMMARY:
            if body.get("epoch", 0) >= rec.epoch:
                rec.summary = body
        elif topic == TOPIC_STATS:
            rec.stats = body
        elif topic == TOPIC_LOG:
            self.on_log(rec.name, body.get("level", "info"), body.get("text", ""))

    # -- stages

    def _start(self, name: str) -> None:
        rec = self.records[name]
        spec = self._specs[name]
        spec.epoch = rec.epoch
        rec.summary = None
        if self.mode == "process":
            path = os.path.join(self._run_dir, f"{name}.json")
            with open(path, "w") as f:
                f.write(spec.to_json())
            env = dict(os.environ)
            root = str(Path(__file__).resolve().parent.parent)
            env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            env["MARSLINK_PARENT_PID"] = str(os.getpid())
            rec.handle = subprocess.Popen(
                [sys.executable, "-m", "flowgraphs.stage", path],
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        else:
            stage = stage_class(spec.type)(StageSpec.from_json(spec.to_json()), context=self._ctx)
            t = threading.Thread(
                target=lambda: rec.exit_codes.append(stage.run()), name=f"stage-{name}", daemon=True
            )
            rec.handle = (t, stage)
            t.start()
        rec.running = True

    def _exit_code(self, rec: StageRecord) -> int | None:
        """Exit status of a stage that ended (None while it runs); records it once."""
        if not rec.running:
            return None
        if self.mode == "process":
            code = rec.handle.poll()
            if code is None:
                return None
            rec.exit_codes.append(code)
        else:
            t, _ = rec.handle
            if t.is_alive():
                return None
            code = rec.exit_codes[-1] if rec.exit_codes else 1
        rec.running = False
        return code

    def _supervise(self, t0: float) -> str:
        until = self.graph.run["until"]
        wall_limit = self.graph.run["wall_limit_s"]
        max_restarts = self.graph.run["max_restarts"]
        while True:
            self._read_bus(0.05)
            if self.on_progress:
                self.on_progress(None)
            if self.kill_hook is not None:
                self.kill_hook(self)
            for rec in self.records.values():
                code = self._exit_code(rec)
                if code is None or code == 0:
                    continue
                why = f"signal {-code}" if code < 0 else f"status {code}"
                if rec.restarts >= max_restarts:
                    self.on_log(rec.name, "error", f"exited with {why}; no restarts left ({max_restarts})")
                    return "stage failed"
                rec.restarts += 1
                rec.epoch += 1
                self.on_log(
                    rec.name,
                    "warning",
                    f"exited with {why}; restarting it (restart {rec.restarts}, epoch {rec.epoch})",
                )
                self._start(rec.name)
            if self._stop_requested:
                return "stopped"
            if until and all(self.records[s].done for s in until):
                return "done"
            if not until and all(not r.running for r in self.records.values()):
                return "done"
            if wall_limit and time.monotonic() - t0 > wall_limit:
                self.on_log("runner", "warning", f"wall-time limit of {wall_limit:g} s reached: stopping")
                return "wall limit"

    def _stop_all(self) -> None:
        names = list(self.records)
        first = [n for n in names if not stage_class(self.records[n].type).STOP_LAST]
        last = [n for n in names if n not in first]
        for group in (first, last):
            self._stop_group(group)

    def _stop_group(self, names: list[str]) -> None:
        timeout = self.graph.run["stop_timeout_s"]
        t0 = time.monotonic()
        signalled = set()
        while True:
            alive = [n for n in names if self.records[n].running and self._exit_code(self.records[n]) is None]
            if not alive:
                break
            elapsed = time.monotonic() - t0
            for n in alive:
                self._publish_ctl(n)
                if self.mode == "thread":
                    self.records[n].handle[1].request_stop()
                elif elapsed > timeout and n not in signalled:
                    signalled.add(n)
                    self.records[n].handle.send_signal(signal.SIGTERM)
                elif elapsed > 2 * timeout:
                    self.records[n].handle.kill()
            if self.mode == "thread" and elapsed > 2 * timeout:
                break  # threads cannot be killed
            self._read_bus(0.1)
        # summaries travel through the proxy after the process ended: collect what is on its way
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(self.records[n].summary is None for n in names):
            self._read_bus(0.05)

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            raise _Interrupted

        return signal.signal(signal.SIGINT, handler), signal.signal(signal.SIGTERM, handler)

    def _restore_signals(self, old) -> None:
        if old is not None:
            signal.signal(signal.SIGINT, old[0])
            signal.signal(signal.SIGTERM, old[1])


def describe(graph: Graph) -> str:
    """A short text description of a graph (stages and links), for ``--dry-run``."""
    lines = [f"{graph.name}: {graph.description}".rstrip(": ")]
    for n, (t, p) in graph.stages.items():
        lines.append(f"  {n} ({t}): " + ", ".join(f"{k}={v!r}" for k, v in p.items()))
    for ln in graph.links:
        a = ".".join(ln.src) if ln.src else f"<{ln.endpoint}>"
        b = ".".join(ln.dst) if ln.dst else f"<{ln.endpoint}>"
        lines.append(f"  {a} -> {b}" + ("" if ln.tagged else " (untagged)"))
    return "\n".join(lines)


def dumps_specs(specs: dict) -> str:
    """JSON of the stage specs (debugging)."""
    return json.dumps({n: json.loads(s.to_json()) for n, s in specs.items()}, indent=2)
