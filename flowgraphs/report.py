"""The run report: what a flowgraph run delivered, against the genie policy and Shannon, and plots.

:class:`RunRecorder` keeps the bus messages the monitor stage hears. :func:`compute_report`
turns them and the stages' final summaries into the numbers of the summary table:

* bytes offered (taken into the transmit queue), delivered (in order, each checked against the
  source), still held (in the transmit queue, or at the sink behind a hole) and lost, which is
  offered - delivered - held and must be 0;
* PLFRAMEs sent by MODCOD and the frame error rate after ACM: every data PLFRAME the
  transmitter sent before the receiver's last report is matched, by stream offset, with the
  receiver's report of it: decoded, failed, or never seen (lost with a header or a receiver
  restart); FER = (failed + never seen) / sent;
* delivered throughput over the scenario (bits of user payload delivered by the end of the
  scenario, per second of stream at the nominal symbol rate), against the genie policy (the same
  MODCOD ladder and margin applied to the true Es/N0 of every chunk, no delay, every frame
  decoded, the same user-frame overhead) and against the Shannon capacity
  Rs * log2(1 + Es/N0) integrated over the same chunks;
* the Es/N0 estimation error (receiver estimate minus truth) and the feedback delay.

:func:`format_report` prints the table; :func:`write_plots` draws the ACM timeline,
constellation snapshots and spectra.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from flowgraphs.timebase import timebase
from flowgraphs.userframes import OVERHEAD_BYTES

_TX_KEYS = ("offset", "samples", "symbols", "t_s", "queue_bytes", "offered", "acked", "retx_frames")
_RX_KEYS = ("offset", "end", "modcod", "esn0_db", "ok", "iters")
_ACM_KEYS = ("t_s", "rx_offset", "apply_at", "esn0_est_db", "margin_db")
_ACK_KEYS = ("rx_offset", "delivered_bytes", "held_bytes")
_TRUTH_KEYS = ("offset", "samples", "t_s", "esn0_db")


def _num(v) -> float:
    return float("nan") if v is None else float(v)


class RunRecorder:
    """Bus messages of a run, kept as columns (:mod:`flowgraphs.columns`).

    Parameters
    ----------
    spill_dir : str or None
        Folder for the older values of each column (memory stays flat over a long run; the files
        are removed by :meth:`close`); None keeps everything in memory.
    """

    def __init__(self, spill_dir: str | None = None):
        from flowgraphs.columns import Column, NameColumn

        self.spill_dir = spill_dir
        if spill_dir:
            os.makedirs(spill_dir, exist_ok=True)

        def col(name: str, cls=Column):
            return cls(os.path.join(spill_dir, name + ".f64") if spill_dir else None)

        self.tx = {k: col("tx_" + k) for k in _TX_KEYS}
        self.tx_modcod = col("tx_modcod", NameColumn)
        self.rx = {k: col("rx_" + k) for k in _RX_KEYS}
        self.rx_name = col("rx_name", NameColumn)
        self.acm = {k: col("acm_" + k) for k in _ACM_KEYS}
        self.acm_modcod = col("acm_modcod", NameColumn)
        self.ack = {k: col("ack_" + k) for k in _ACK_KEYS}
        self.truth = {k: col("truth_" + k) for k in _TRUTH_KEYS}
        self.snapshots: list[dict] = []
        self.spectra: list[dict] = []
        self.done: dict = {}
        self.frames_failed = 0  # receiver reports of data frames that failed

    def add(self, topic: str, body: dict) -> None:
        """Record one bus message."""
        if topic == "tx.frames":
            for k in _TX_KEYS:
                self.tx[k].append(_num(body.get(k)))
            self.tx_modcod.append(str(body.get("modcod")))
        elif topic == "rx.frames":
            for f in body.get("frames", []):
                for k in _RX_KEYS:
                    self.rx[k].append(_num(f.get(k)))
                self.rx_name.append(str(f.get("name")))
                if _num(f.get("ok")) == 0 and _num(f.get("modcod")) > 0:
                    self.frames_failed += 1
        elif topic == "acm.cmd":
            for k in _ACM_KEYS:
                self.acm[k].append(_num(body.get(k)))
            self.acm_modcod.append(str(body.get("modcod")))
        elif topic == "sink.ack":
            for k in _ACK_KEYS:
                self.ack[k].append(_num(body.get(k)))
        elif topic == "chan.truth":
            for k in _TRUTH_KEYS:
                self.truth[k].append(_num(body.get(k)))
        elif topic == "rx.snapshot":
            if sum(s["modcod"] == body.get("modcod") for s in self.snapshots) < 4:
                self.snapshots.append(body)
        elif topic == "chan.spectrum":
            if len(self.spectra) < 64:
                self.spectra.append(body)

    def close(self) -> None:
        """Remove the spill files (after the report and ``timeline.npz`` are written)."""
        for c in self._columns():
            c.close()
        if self.spill_dir:
            try:
                os.rmdir(self.spill_dir)
            except OSError:
                pass

    def _columns(self):
        for name in ("tx", "rx", "acm", "ack", "truth"):
            yield from getattr(self, name).values()
        yield from (self.tx_modcod, self.rx_name, self.acm_modcod)

    def arrays(self, name: str) -> dict:
        """One table as numpy arrays."""
        return {k: v.values() for k, v in getattr(self, name).items()}

    def save(self, path: str) -> str:
        """Write every table to an ``.npz`` file; return its path."""
        cols = {}
        for name in ("tx", "rx", "acm", "ack", "truth"):
            for k, v in self.arrays(name).items():
                cols[f"{name}_{k}"] = v
        cols["tx_modcod"] = self.tx_modcod.values()
        cols["rx_name"] = self.rx_name.values()
        cols["acm_modcod"] = self.acm_modcod.values()
        np.savez_compressed(path, **cols)
        return path

    def progress(self, tb, window_s: float, wall_s: float) -> dict:
        """Progress numbers: scenario time, MODCOD, Es/N0, throughput, counts."""
        out = {
            "start_s": tb.start_s,
            "end_s": tb.start_s + tb.duration_s if tb.duration_s else None,
            "wall_s": wall_s,
        }
        if len(self.tx["t_s"]):
            out["t_s"] = self.tx["t_s"][-1]
            out["modcod"] = self.tx_modcod[-1]
            out["symbols"] = self.tx["symbols"].total
            out["retx_frames"] = self.tx["retx_frames"][-1]
            out["msym_per_s"] = out["symbols"] / max(wall_s, 1e-9) / 1e6
        if len(self.acm["esn0_est_db"]):
            out["esn0_est_db"] = self.acm["esn0_est_db"][-1]
        if len(self.truth["esn0_db"]):
            out["esn0_true_db"] = self.truth["esn0_db"][-1]
        if len(self.ack["delivered_bytes"]):  # (over the acknowledgments still in memory)
            off = self.ack["rx_offset"].recent()
            dlv = self.ack["delivered_bytes"].recent()
            out["delivered_bytes"] = dlv[-1]
            span = tb.samples(window_s)
            i = int(np.searchsorted(off, off[-1] - span))
            dt = (off[-1] - off[i]) / tb.sample_rate_hz
            out["throughput_bps"] = 8 * (dlv[-1] - dlv[i]) / dt if dt > 0 else 0.0
        out["frames_failed"] = self.frames_failed
        return out


# ---------------------------------------------------------------------------------------------
# the numbers


def _stage_of(stages: dict, peers: dict, type_: str) -> tuple[str | None, dict]:
    for n, v in peers.items():
        if v["type"] == type_:
            return n, (stages.get(n) or {}).get("summary", {}) or {}
    return None, {}


def compute_report(rec: RunRecorder, link: dict, stages: dict, peers: dict) -> dict:
    """The run's numbers; see the module notes.

    Parameters
    ----------
    rec : RunRecorder
    link : dict
        The flowgraph's ``[link]`` table.
    stages : dict
        Stage name -> {"type", "summary", "wire"} (final summaries).
    peers : dict
        Stage name -> {"type", "params"} (the graph).

    Returns
    -------
    dict
        JSON-ready.
    """
    from modem.acm import genie_efficiency, modcod_ladder, shannon_bits_per_symbol

    tb = timebase(link)
    fs = tb.sample_rate_hz
    sps = tb.samples_per_symbol
    _, txs = _stage_of(stages, peers, "tx")
    _, sks = _stage_of(stages, peers, "sink")
    _, rxs = _stage_of(stages, peers, "rx")
    acm_name, acs = _stage_of(stages, peers, "acm")
    acm_params = peers[acm_name]["params"] if acm_name else {}
    tx = rec.arrays("tx")
    end = txs.get("end_offset")
    if end is None:
        end = float(tx["offset"][-1] + tx["samples"][-1]) if tx["offset"].size else 0.0
    end = float(end)
    stream_s = end / fs if fs else 0.0
    rep: dict = {
        "graph_link": {
            k: link.get(k)
            for k in (
                "symbol_rate_hz",
                "samples_per_symbol",
                "frame",
                "pilots",
                "time_scale",
                "scenario",
                "start_s",
            )
        },
        "scenario_s": [tb.start_s, tb.t_s(end)],
        "stream_s": stream_s,
    }

    # bytes
    rep["bytes"] = {
        **byte_accounts(txs, sks),
        "corrupt_frames": int(sks.get("corrupt", 0)),
        "duplicate_frames": int(sks.get("duplicates", 0)),
        "verified": bool(sks.get("verified", False)),
    }

    # frames: match every data PLFRAME sent with the receiver's report at its offset
    rx = rec.arrays("rx")
    names = np.asarray(rec.tx_modcod)
    data = names != "dummy"
    rx_seen_end = float(rx["end"].max()) if rx["end"].size else 0.0
    sent_mask = data & (tx["offset"] + tx["samples"] <= rx_seen_end)
    _, chs = _stage_of(stages, peers, "channel")
    latency = float(chs.get("latency_samples", 0))
    outcome = _match_frames(tx["offset"], rx["offset"], rx["modcod"], rx["ok"], tol=1500 * sps, slip=latency)
    by: dict = {}
    for name in sorted(set(names[data]), key=lambda n: _modcod_index(n)):
        m = names == name
        s = m & sent_mask
        by[name] = {
            "sent": int(m.sum()),
            "checked": int(s.sum()),
            "failed": int(np.sum(s & (outcome == 0))),
            "unobserved": int(np.sum(s & (outcome < 0))),
            "time_share": float(tx["symbols"][m].sum() / max(tx["symbols"].sum(), 1)),
        }
    checked = int(sent_mask.sum())
    failed = int(np.sum(sent_mask & (outcome == 0)))
    unobserved = int(np.sum(sent_mask & (outcome < 0)))
    rep["frames"] = {
        "plframes": int(tx["offset"].size),
        "data": int(data.sum()),
        "dummy": int((~data).sum()),
        "checked": checked,
        "failed": failed,
        "unobserved": unobserved,
        "fer": (failed + unobserved) / checked if checked else float("nan"),
        "by_modcod": by,
        "retransmitted_user_frames": int(txs.get("frames_retransmitted", 0)),
        "user_frames_sent": int(txs.get("frames_sent", 0)),
        "rx": rxs,
    }

    # throughput against the genie and Shannon, over [0, end)
    truth = rec.arrays("truth")
    payload = int(txs.get("payload_bytes", 4068))
    eff = payload / (payload + OVERHEAD_BYTES)
    margin = float(acm_params.get("margin_db", 0.0))
    ladder = modcod_ladder(
        link.get("frame", "normal"), link.get("pilots", True), acm_params.get("modcods") or None
    )
    if truth["offset"].size:
        lo = truth["offset"]
        n = np.clip(np.minimum(lo + truth["samples"], end) - lo, 0, None) / sps  # symbols inside [0, end)
        snr = truth["esn0_db"]
        snr_c = np.where(np.isfinite(snr), snr, -np.inf)  # null: the link is down
        genie_bits = float(np.sum(n * genie_efficiency(snr_c, ladder, margin)) * eff)
        genie0_bits = float(np.sum(n * genie_efficiency(snr_c, ladder, 0.0)) * eff)
        shannon_bits = float(np.sum(n * shannon_bits_per_symbol(np.minimum(snr_c, 60.0))))
        up = np.isfinite(snr)
        if np.any(up):
            rep["esn0_true_db"] = {
                "min": float(np.min(snr[up])),
                "max": float(np.max(snr[up])),
                "down_fraction": float(1 - np.mean(up)),
            }
    else:
        genie_bits = genie0_bits = shannon_bits = float("nan")
    # a second yardstick: the genie on the receiver's own Es/N0 estimate of every frame (what the
    # decoder really had, implementation losses included), still without delay or hysteresis
    seen = (rx["modcod"] >= 0) & np.isfinite(rx["esn0_db"]) & (rx["offset"] < end)
    est_bits = float(
        np.sum((rx["end"] - rx["offset"])[seen] / sps * genie_efficiency(rx["esn0_db"][seen], ladder, margin))
        * eff
    )
    ack = rec.arrays("ack")
    inside = ack["rx_offset"] <= end
    delivered_in = float(ack["delivered_bytes"][inside].max()) if np.any(inside) else 0.0
    ours_bits = 8 * delivered_in

    def rate(bits: float) -> float:
        return bits / stream_s if stream_s > 0 else float("nan")

    rep["throughput"] = {
        "delivered_bits_in_scenario": ours_bits,
        "delivered_bps": rate(ours_bits),
        "genie_bps": rate(genie_bits),
        "genie_margin0_bps": rate(genie0_bits),
        "shannon_bps": rate(shannon_bits),
        "vs_genie": ours_bits / genie_bits if genie_bits > 0 else float("nan"),
        "vs_shannon": ours_bits / shannon_bits if shannon_bits > 0 else float("nan"),
        "genie_rx_estimate_bps": rate(est_bits),
        "vs_genie_rx_estimate": ours_bits / est_bits if est_bits > 0 else float("nan"),
        "genie_margin_db": margin,
        "user_frame_efficiency": eff,
    }

    # Es/N0 estimation error at the frames' offsets
    good = (rx["modcod"] > 0) & np.isfinite(rx["esn0_db"])
    if truth["offset"].size and np.any(good):
        k = np.clip(
            np.searchsorted(truth["offset"], rx["offset"][good], side="right") - 1,
            0,
            truth["offset"].size - 1,
        )
        err = rx["esn0_db"][good] - truth["esn0_db"][k]
        err = err[np.isfinite(err)]
        if err.size:
            rep["esn0_error_db"] = {
                "mean": float(err.mean()),
                "rms": float(np.sqrt(np.mean(err**2))),
                "frames": int(err.size),
            }
    rep["feedback"] = {
        "configured_s": acm_params.get("feedback_delay_s"),
        "measured_s": txs.get("feedback_delay_s"),
        "stalls": txs.get("feedback_stalls", 0),
        "acm_switches": acs.get("switches"),
        "policy": acm_params.get("policy"),
    }
    rep["end_reason"] = txs.get("end_reason", "")
    rep["security"] = security_report(stages)
    return rep


_CONTROL_REASONS = ("replay", "stale_epoch", "too_many_senders", "invalid")
_SDLS_KEYS = ("frames_ok", "rejected", "replay", "too_old", "auth_failed", "truncated", "bad_spi")


def security_report(stages: dict) -> dict:
    """What the run refused: CurveZMQ peers, replayed commands, SDLS frames; and the spill.

    ``stages``: name -> {"summary", "security", "control"} (final summaries).
    """
    curve_links = refused = 0
    control_rejected = 0
    for s in stages.values():
        sec = s.get("security") or {}
        curve_links += int(sec.get("curve_links", 0))
        refused += int(sec.get("refused", 0))
        ctl = s.get("control") or {}
        control_rejected += sum(int(ctl.get(k, 0)) for k in _CONTROL_REASONS)
    out = {"curve_links": curve_links, "peers_refused": refused, "control_rejected": control_rejected}
    for s in stages.values():
        summ = s.get("summary") or {}
        if isinstance(summ.get("sdls"), dict) and "rejected" in summ["sdls"]:
            out["sdls"] = {k: summ["sdls"].get(k, 0) for k in _SDLS_KEYS}
        if "spilled_bytes" in summ:
            out["spilled_bytes"] = int(summ["spilled_bytes"])
            out["spill_peak_bytes"] = int(summ.get("spill_peak_bytes", 0))
    return out


def _match_frames(tx_off, rx_off, rx_mc, rx_ok, tol: float, slip: float = 0.0) -> np.ndarray:
    """Outcome of each transmitted frame from the receiver's reports: 1 decoded, 0 failed, -1 unseen.

    Frames are matched by stream offset, in order, allowing for the slip of the channel's sample
    clock (the receiver's offsets drift from the transmitter's by up to a few thousand samples
    over a pass, less than a sample per frame): each match updates the slip estimate, and a
    report is taken for a frame when it lies within ``tol`` samples of the frame's offset plus
    the slip (starting from ``slip``, the channel's delay). Reports of lost headers (MODCOD -1)
    match nothing.
    """
    out = np.full(tx_off.size, -1)
    keep = rx_mc >= 0
    order = np.argsort(rx_off[keep], kind="stable")
    ro, rmc, rok = rx_off[keep][order], rx_mc[keep][order], rx_ok[keep][order]
    j = 0
    for i in np.argsort(tx_off, kind="stable"):
        target = tx_off[i] + slip
        while j < ro.size and ro[j] < target - tol:
            j += 1
        if j < ro.size and abs(ro[j] - target) <= tol:
            slip = ro[j] - tx_off[i]
            out[i] = int(rok[j] > 0) if rmc[j] > 0 else 1
            j += 1
    return out


def _modcod_index(name: str) -> int:
    from modem.dvbs2.modcod import modcod

    try:
        return modcod(name).index
    except ValueError:
        return 99


# ---------------------------------------------------------------------------------------------
# text


def _si(x: float, unit: str) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    for f, p in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= f:
            return f"{x / f:.2f} {p}{unit}"
    return f"{x:.2f} {unit}"


def _nan(o):
    """None (how JSON carries NaN) back to NaN, recursively."""
    if o is None:
        return float("nan")
    if isinstance(o, dict):
        return {k: _nan(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_nan(v) for v in o]
    return o


def byte_accounts(txs: dict, sks: dict) -> dict:
    """Offered, delivered, held and lost bytes from the transmitter's and the sink's summaries.

    The sink delivers in order, so delivered bytes are the stream's first ``delivered`` bytes.
    Bytes the transmitter still holds below that point were delivered while their
    acknowledgment was on its way when the run stopped (``acked_in_flight``): they count as
    delivered, not held. Bytes both ends hold (a frame the sink keeps beyond a hole, not yet
    acknowledged) count once, as held at the sink. Without byte ranges in the summaries (an
    older stage) the plain counts are used.
    """
    offered = int(txs.get("bytes_offered", 0))
    delivered = int(sks.get("delivered_bytes", 0))
    tx_held = int(txs.get("held_bytes", 0))
    sink_held = int(sks.get("held_bytes", 0))
    in_flight = 0
    tx_r, sk_r = txs.get("held_ranges"), sks.get("held_ranges")
    if isinstance(tx_r, list) and isinstance(sk_r, list):
        beyond = [(max(int(lo), delivered), int(hi)) for lo, hi in tx_r if int(hi) > delivered]
        sink = [(max(int(lo), delivered), int(hi)) for lo, hi in sk_r if int(hi) > delivered]
        both = sum(max(0, min(h1, h2) - max(l1, l2)) for l1, h1 in beyond for l2, h2 in sink)
        tx_beyond = sum(hi - lo for lo, hi in beyond)
        in_flight = tx_held - tx_beyond + both
        tx_held = tx_beyond - both
    return {
        "offered": offered,
        "delivered": delivered,
        "held_tx_queue": tx_held,
        "held_tx_spill": int(txs.get("spill_pending_bytes", 0)),
        "held_sink": sink_held,
        "acked_in_flight": in_flight,
        "lost": offered - delivered - tx_held - sink_held,
    }


def byte_problems(b: dict) -> list[str]:
    """What is wrong with a run's byte accounting (``report["bytes"]``); [] when nothing is.

    Lost bytes (offered - delivered - held > 0), and any inconsistency: a negative count, a
    negative "lost" (more delivered or held than offered) or a sink whose delivered bytes were
    not all checked against the source while it says they were.
    """
    out = []
    for k in ("offered", "delivered", "held_tx_queue", "held_sink"):
        if int(b.get(k, 0)) < 0:
            out.append(f"accounting inconsistent: {k} = {b[k]} < 0")
    lost = int(b.get("lost", 0))
    if lost > 0:
        out.append(f"{lost:,} bytes lost")
    elif lost < 0:
        out.append(
            f"accounting inconsistent: offered {b.get('offered')} - delivered {b.get('delivered')} - held "
            f"{b.get('held_tx_queue')} + {b.get('held_sink')} = {lost} < 0"
        )
    if int(b.get("delivered", 0)) > int(b.get("offered", 0)):
        out.append(f"accounting inconsistent: delivered {b.get('delivered')} > offered {b.get('offered')}")
    return out


def format_report(rep: dict, restarts: dict | None = None, wall_s: float | None = None) -> str:
    """The summary table of a run report (see :func:`compute_report`)."""
    rep = _nan(rep)
    lines = []
    lk = rep.get("graph_link", {})
    s0, s1 = rep.get("scenario_s", [0, 0])
    head = f"scenario {lk.get('scenario') or '(none)'}: t = {s0:.1f} .. {s1:.1f} s"
    head += f" (time scale {lk.get('time_scale', 1):g}, {_si(lk.get('symbol_rate_hz', 0), 'sym/s')}"
    head += f", {lk.get('frame')} frames, pilots {'on' if lk.get('pilots') else 'off'})"
    if wall_s is not None:
        head += f", {wall_s:.0f} s wall"
    lines.append(head)
    b = rep["bytes"]

    def row(label: str, value: str, note: str = "") -> str:
        return f"  {label:<20} {value:>15}" + (f"   {note}" if note else "")

    checked = ", every byte checked against the source" if b.get("verified") else ""
    lines += [
        "",
        row("bytes offered", f"{b['offered']:,}"),
        row("bytes delivered", f"{b['delivered']:,}", "in order" + checked),
        row(
            "held in TX queue",
            f"{b['held_tx_queue']:,}",
            f"{b['held_tx_spill']:,} of them waiting on disk (spill)" if b.get("held_tx_spill") else "",
        ),
        row("held at sink", f"{b['held_sink']:,}"),
        *(
            [row("ack in flight", f"{b['acked_in_flight']:,}", "delivered, still queued at TX")]
            if b.get("acked_in_flight")
            else []
        ),
        row("bytes lost", f"{b['lost']:,}"),
        "",
    ]
    if rep.get("problems"):  # set by the runner: why the run's status is not 0
        lines[1:1] = ["", "  RUN FAILED: " + "; ".join(rep["problems"])]
    f = rep["frames"]
    fer = f["fer"]
    sec = rep.get("security") or {}
    if sec.get("curve_links") or sec.get("sdls") or sec.get("peers_refused") or sec.get("control_rejected"):
        note = f"on {sec.get('curve_links', 0)} link ends" if sec.get("curve_links") else "CurveZMQ off"
        lines.append(row("peers refused", f"{sec.get('peers_refused', 0):,}", note))
        lines.append(row("commands refused", f"{sec.get('control_rejected', 0):,}", "replayed or stale"))
        if sec.get("sdls"):
            sd = sec["sdls"]
            why = f"of {sd['frames_ok'] + sd['rejected']:,} (replay {sd['replay'] + sd['too_old']}, "
            why += f"MAC {sd['auth_failed']}, truncated {sd['truncated']}, SPI {sd['bad_spi']})"
            lines.append(row("SDLS frames refused", f"{sd['rejected']:,}", why))
        lines.append("")
    lines.append(row("PLFRAMEs sent", f"{f['plframes']:,}", f"({f['data']:,} data, {f['dummy']:,} dummy)"))
    if math.isfinite(fer):
        why = f"({f['failed']} failed + {f['unobserved']} unseen of {f['checked']:,})"
        lines.append(row("FER after ACM", f"{fer:.2e}", why))
    else:
        lines.append(row("FER after ACM", "n/a"))
    resent = f["retransmitted_user_frames"]
    lines.append(row("user frames resent", f"{resent:,}", f"of {f['user_frames_sent']:,} sent"))
    e = rep.get("esn0_error_db")
    if e:
        note = f"mean error, rms {e['rms']:.2f} dB over {e['frames']:,} frames"
        lines.append(row("Es/N0 estimate", f"{e['mean']:+.2f} dB", note))
    fb = rep.get("feedback", {})
    if isinstance(fb.get("measured_s"), dict):
        m = fb["measured_s"]
        note = f"mean, max {m['max']:.2f} s (configured {fb.get('configured_s')} s)"
        lines.append(row("feedback delay", f"{m['mean']:.2f} s", note))
    lines += ["", "  MODCOD              frames   time    failed  unseen"]
    for name, v in f["by_modcod"].items():
        share = 100 * v["time_share"]
        lines.append(f"  {name:<16} {v['sent']:>9,}  {share:>5.1f} %  {v['failed']:>7}  {v['unobserved']:>6}")
    t = rep["throughput"]
    genie_note = (
        f"delivered = {100 * t['vs_genie']:.1f} % of genie (same ladder, margin {t['genie_margin_db']:g} dB, "
        "true Es/N0, no delay)"
    )
    lines += [
        "",
        "  throughput (user bits delivered during the scenario, per second of stream)",
        row("  marslink ACM", _si(t["delivered_bps"], "bit/s")),
        row("  genie policy", _si(t["genie_bps"], "bit/s"), genie_note),
        row(
            "  genie, rx Es/N0",
            _si(t.get("genie_rx_estimate_bps", float("nan")), "bit/s"),
            f"delivered = {100 * t.get('vs_genie_rx_estimate', float('nan')):.1f} % "
            "(the same genie on the receiver's own Es/N0 estimates)",
        ),
        row(
            "  Shannon capacity",
            _si(t["shannon_bps"], "bit/s"),
            f"delivered = {100 * t['vs_shannon']:.1f} % of Rs log2(1 + Es/N0)",
        ),
    ]
    pr = rep.get("processing")
    if pr:
        cpu = ", ".join(f"{n} {c:.0f}" for n, c in sorted(pr["cpu_s"].items(), key=lambda kv: -kv[1]))
        lines += [
            "",
            f"  processing: {pr['symbols'] / 1e6:.1f} M symbols in {pr['wall_s']:.0f} s "
            f"({pr['msym_per_s']:.2f} Msym/s); CPU seconds by stage: {cpu}",
        ]
    if restarts:
        lines += ["", "  stage restarts: " + ", ".join(f"{k} {v}" for k, v in restarts.items())]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# plots


def write_plots(rec: RunRecorder, rep: dict, out_dir) -> list[Path]:
    """ACM timeline, constellation snapshots and spectra as PNG files in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    files = []
    files.append(_plot_timeline(plt, rec, rep, out / "acm_timeline.png"))
    if rec.snapshots:
        files.append(_plot_constellations(plt, rec, out / "constellations.png"))
    if rec.spectra:
        files.append(_plot_spectra(plt, rec, out / "spectrum.png"))
    return files


def _plot_timeline(plt, rec, rep, path: Path) -> Path:
    from modem.acm import genie_efficiency, modcod_ladder
    from modem.dvbs2.modcod import modcod

    lk = rep["graph_link"]
    tb = timebase({**lk, "duration_s": 0.0, "scenario": ""})
    truth = rec.arrays("truth")
    rx = rec.arrays("rx")
    tx = rec.arrays("tx")
    ack = rec.arrays("ack")
    fig, ax = plt.subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    if truth["t_s"].size:
        ax[0].plot(truth["t_s"], truth["esn0_db"], "k-", lw=1.2, label="true Es/N0")
    good = rx["modcod"] >= 0
    t_rx = np.array([tb.t_s(o) for o in rx["offset"]]) if rx["offset"].size else np.zeros(0)
    ok = (rx["ok"] > 0) & (rx["modcod"] > 0)
    ax[0].plot(t_rx[good], rx["esn0_db"][good], ".", ms=2, color="tab:blue", label="receiver estimate")
    bad = (rx["ok"] == 0) & (rx["modcod"] > 0)
    if np.any(bad):
        ax[0].plot(t_rx[bad], rx["esn0_db"][bad], "x", color="tab:red", label="failed frame")
    del ok
    names = rec.tx_modcod.values().tolist()
    idx = np.array([0 if n in ("dummy", "None") else modcod(n).index for n in names])
    thr = np.full(idx.size, np.nan)
    from modem.acm import measured_thresholds

    table = measured_thresholds()
    frame = lk.get("frame", "normal")
    for i, n in enumerate(names):
        if n not in ("dummy", "None"):
            thr[i] = table.get((n, frame), np.nan)
    ax[0].step(tx["t_s"], thr, where="post", color="tab:orange", lw=1, label="threshold of the MODCOD sent")
    ax[0].set_ylabel("Es/N0 (dB)")
    finite = truth["esn0_db"][np.isfinite(truth["esn0_db"])] if truth["t_s"].size else np.zeros(0)
    if finite.size:
        ax[0].set_ylim(finite.min() - 4, finite.max() + 3)
    ax[0].legend(loc="best", fontsize=8)
    ax[0].grid(alpha=0.3)
    ax[1].step(tx["t_s"], idx, where="post", color="tab:green", label="MODCOD sent (0 = dummy)")
    if truth["t_s"].size:
        ladder = modcod_ladder(frame, lk.get("pilots", True))
        margin = rep["throughput"].get("genie_margin_db", 0.0)
        by_eta = {o.eta: o.modcod.index for o in ladder}
        eta = genie_efficiency(truth["esn0_db"], ladder, margin)
        gidx = np.array([by_eta.get(e, 0) for e in eta])
        ax[1].step(truth["t_s"], gidx, where="post", color="k", lw=0.8, alpha=0.6, label="genie")
    ax[1].set_ylabel("PLS MODCOD index")
    ax[1].legend(loc="best", fontsize=8)
    ax[1].grid(alpha=0.3)
    if ack["rx_offset"].size > 1:
        # delivered bytes on a regular grid of scenario time, differenced over 1 % of the run
        t_ack = np.array([tb.t_s(o) for o in ack["rx_offset"]])
        grid = np.linspace(t_ack[0], t_ack[-1], 400)
        dlv = np.interp(grid, t_ack, np.maximum.accumulate(ack["delivered_bytes"]))
        step = max(1, grid.size // 100)
        dt_stream = (grid[step:] - grid[:-step]) / tb.time_scale
        with np.errstate(divide="ignore", invalid="ignore"):
            thr_bps = np.where(dt_stream > 0, 8 * (dlv[step:] - dlv[:-step]) / dt_stream, np.nan)
        ax[2].plot(
            0.5 * (grid[step:] + grid[:-step]), thr_bps / 1e6, color="tab:blue", lw=1, label="delivered"
        )
    if truth["t_s"].size:
        from modem.acm import shannon_bits_per_symbol

        eff = rep["throughput"]["user_frame_efficiency"]
        rs = lk["symbol_rate_hz"]
        ax[2].plot(truth["t_s"], eta * rs * eff / 1e6, "k-", lw=0.8, alpha=0.6, label="genie")
        ax[2].plot(
            truth["t_s"],
            shannon_bits_per_symbol(truth["esn0_db"]) * rs / 1e6,
            ":",
            color="gray",
            label="Shannon Rs log2(1+Es/N0)",
        )
    ax[2].set_ylabel("throughput (Mbit/s)")
    ax[2].set_xlabel("scenario time (s)")
    ax[2].legend(loc="best", fontsize=8)
    ax[2].grid(alpha=0.3)
    t = rep["throughput"]
    fig.suptitle(
        f"ACM timeline: delivered {100 * t['vs_genie']:.1f} % of genie, {100 * t['vs_shannon']:.1f} % of"
        f" Shannon; FER {rep['frames']['fer']:.1e}; {rep['bytes']['lost']} bytes lost"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_constellations(plt, rec, path: Path) -> Path:
    from modem.dvbs2.modcod import modcod

    chosen: dict[str, dict] = {}
    for s in rec.snapshots:
        chosen.setdefault(s["modcod"], s)
    items = sorted(chosen.values(), key=lambda s: modcod(s["modcod"]).index)
    if len(items) > 6:  # spread over the ladder
        pick = np.linspace(0, len(items) - 1, 6).round().astype(int)
        items = [items[i] for i in pick]
    cols = min(3, len(items))
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.6 * rows), squeeze=False, constrained_layout=True
    )
    for a in axes.ravel():
        a.set_visible(False)
    for a, s in zip(axes.ravel(), items, strict=False):
        a.set_visible(True)
        a.plot(s["re"], s["im"], ".", ms=2)
        a.set_title(f"{s['modcod']}, Es/N0 {s['esn0_db']:.1f} dB\nt = {s['t_s']:.0f} s", fontsize=9)
        a.set_aspect("equal")
        a.set_xlim(-1.6, 1.6)
        a.set_ylim(-1.6, 1.6)
        a.grid(alpha=0.3)
    fig.suptitle("received payload symbols (matched filter, gain and phase from the PLHEADER)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_spectra(plt, rec, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    sp = rec.spectra
    pick = np.unique(np.linspace(0, len(sp) - 1, min(4, len(sp))).round().astype(int))
    first = sp[pick[0]]
    f = np.asarray(first["f_hz"]) / 1e6
    ax.plot(f, first["in_db"], "k-", lw=1.2, label="transmitted")
    for i in pick:
        s = sp[i]
        ax.plot(
            np.asarray(s["f_hz"]) / 1e6,
            s["out_db"],
            lw=0.8,
            label=f"received, t = {s['t_s']:.0f} s, Es/N0 {s['esn0_db']:.1f} dB",
        )
    ax.set_xlabel("frequency (MHz, baseband)")
    ax.set_ylabel("PSD (dB, transmitted average = 0 dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
