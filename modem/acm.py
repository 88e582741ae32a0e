"""Adaptive coding and modulation: the MODCOD policy, its genie yardstick and the transmit queue.

* :func:`modcod_ladder` lists the MODCODs a link may use with their measured thresholds (Es/N0 at
  FER 1e-2 on AWGN, ``modem/dvbs2/data/measured_thresholds.csv``) and their efficiency (BBFRAME
  data-field bits per PLFRAME symbol, PLHEADER and pilots included), dropping dominated ones
  (a higher threshold for no more throughput).
* :class:`AcmPolicy` turns Es/N0 reports into MODCOD decisions: the highest-efficiency MODCOD
  whose threshold plus a margin is at most the estimate; moving up needs a further hysteresis,
  moving down is immediate; below the lowest MODCOD it answers None (send nothing, hold the
  data). An optional outer loop raises the margin after each frame error and lets it decay on
  successes, so that the frame error rate settles near a target.
* :func:`genie_efficiency` is the yardstick: the same ladder and margin applied to the channel's
  true Es/N0 with no delay, no hysteresis and no estimation error.
* :class:`TransmitQueue` holds user data from the moment it is offered until the far end
  acknowledges it (selective-repeat ARQ): frames lost on the link, or lost with a receiver that
  crashed, are sent again; nothing leaves the queue unacknowledged, so an outage costs time,
  never data.

The queue's clock is whatever the caller uses for "now" (the flowgraph uses the transmitter's
output sample index), in the same unit as its retransmission timeout.
"""

from __future__ import annotations

import csv
import heapq
import io
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from modem.dvbs2.modcod import FRAMES, Modcod, frame_spec, modcod


@dataclass(frozen=True)
class ModcodOption:
    """One rung of the ACM ladder.

    Attributes
    ----------
    modcod : Modcod
    threshold_db : float
        Es/N0 at FER 1e-2 (measured, AWGN), dB.
    eta : float
        BBFRAME data-field bits per PLFRAME symbol (PLHEADER and pilots included).
    data_field_bytes : int
        BBFRAME data field, bytes.
    plframe_symbols : int
    """

    modcod: Modcod
    threshold_db: float
    eta: float
    data_field_bytes: int
    plframe_symbols: int

    @property
    def name(self) -> str:
        """MODCOD name, e.g. "QPSK 1/2"."""
        return self.modcod.name


@cache
def measured_thresholds() -> dict[tuple[str, str], float]:
    """{(MODCOD name, frame): Es/N0 at FER 1e-2 in dB} from ``measured_thresholds.csv``."""
    text = resources.files("modem.dvbs2.data").joinpath("measured_thresholds.csv").read_text()
    rows = csv.DictReader(io.StringIO("\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))))
    return {(r["name"], r["frame"]): float(r["esn0_fer1e2_db"]) for r in rows}


def modcod_ladder(frame: str = "normal", pilots: bool = True, modcods=None) -> tuple[ModcodOption, ...]:
    """The MODCODs an ACM link chooses from, by ascending threshold, dominated ones removed.

    Parameters
    ----------
    frame : {"normal", "short"}
    pilots : bool
    modcods : sequence of int or str, optional
        Restrict to these MODCODs (default: every MODCOD with a measured threshold for ``frame``).

    Returns
    -------
    tuple of ModcodOption
        Strictly increasing in both threshold and efficiency.

    Raises
    ------
    ValueError
        Unknown frame or MODCOD, or a MODCOD without a measured threshold for ``frame``.
    """
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {', '.join(map(repr, FRAMES))}; got {frame!r}")
    table = measured_thresholds()
    names = [n for (n, f) in table if f == frame] if modcods is None else [modcod(m).name for m in modcods]
    if not names:
        raise ValueError("modcods must name at least one MODCOD")
    opts = []
    for n in names:
        if (n, frame) not in table:
            raise ValueError(f"MODCOD {n} has no measured threshold for {frame} frames")
        spec = frame_spec(n, frame, pilots)
        opts.append(
            ModcodOption(
                spec.modcod, table[(n, frame)], spec.eta, spec.data_field_bits // 8, spec.plframe_symbols
            )
        )
    opts.sort(key=lambda o: (o.threshold_db, -o.eta))
    ladder: list[ModcodOption] = []
    for o in opts:
        if not ladder or o.eta > ladder[-1].eta:
            ladder.append(o)
    return tuple(ladder)


def best_option(ladder, esn0_db: float, margin_db: float) -> ModcodOption | None:
    """The most efficient rung with threshold + margin <= Es/N0, or None (outage)."""
    best = None
    if esn0_db is None or not math.isfinite(esn0_db):
        return None
    for o in ladder:  # ascending thresholds and efficiencies
        if o.threshold_db + margin_db <= esn0_db:
            best = o
        else:
            break
    return best


def genie_efficiency(esn0_db, ladder, margin_db: float = 0.0) -> np.ndarray:
    """Efficiency (data-field bits per symbol) of the genie's choice for each true Es/N0.

    Parameters
    ----------
    esn0_db : array_like of float
        True Es/N0, dB.
    ladder : sequence of ModcodOption
    margin_db : float
        The genie uses the same threshold table and margin as the policy it is compared with.

    Returns
    -------
    ndarray of float64, same shape (0 where no MODCOD fits)
    """
    x = np.asarray(esn0_db, dtype=np.float64)
    thr = np.array([o.threshold_db for o in ladder]) + margin_db
    eta = np.concatenate([[0.0], [o.eta for o in ladder]])
    idx = np.searchsorted(thr, np.where(np.isfinite(x), x, -np.inf), side="right")
    return eta[idx]


def shannon_bits_per_symbol(esn0_db) -> np.ndarray:
    """AWGN capacity log2(1 + Es/N0), bits per complex symbol (bandwidth = symbol rate)."""
    x = np.asarray(esn0_db, dtype=np.float64)
    return np.log2(1.0 + 10.0 ** (x / 10.0))


class AcmPolicy:
    """MODCOD choice from Es/N0 estimates, with margin, hysteresis and an optional outer loop.

    Parameters
    ----------
    ladder : sequence of ModcodOption
        From :func:`modcod_ladder`.
    margin_db : float
        Required Es/N0 above a MODCOD's threshold, dB, >= 0.
    hysteresis_db : float
        Extra margin to move up to a more efficient MODCOD, dB, >= 0 (moving down is immediate).
    olla_step_db : float
        Outer loop: margin added after each failed frame, dB (0 disables the loop).
    target_fer : float
        Outer loop: the frame error rate it settles at; each good frame lowers the extra margin
        by ``olla_step_db * target_fer / (1 - target_fer)``.
    olla_max_db : float
        Ceiling of the outer loop's extra margin, dB.

    Attributes
    ----------
    current : ModcodOption or None
        The last decision (None: no MODCOD fits, hold the data).
    extra_margin_db : float
        The outer loop's current addition to ``margin_db``.
    """

    def __init__(
        self,
        ladder,
        margin_db: float = 0.5,
        hysteresis_db: float = 0.2,
        olla_step_db: float = 0.0,
        target_fer: float = 1e-3,
        olla_max_db: float = 3.0,
    ):
        self.ladder = tuple(ladder)
        if not self.ladder:
            raise ValueError("ladder must hold at least one MODCOD")
        for name, v, lo, hi in (
            ("margin_db", margin_db, 0.0, 20.0),
            ("hysteresis_db", hysteresis_db, 0.0, 10.0),
            ("olla_step_db", olla_step_db, 0.0, 5.0),
            ("target_fer", target_fer, 1e-9, 0.5),
            ("olla_max_db", olla_max_db, 0.0, 20.0),
        ):
            if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number in [{lo:g}, {hi:g}]; got {v!r}")
        self.margin_db = float(margin_db)
        self.hysteresis_db = float(hysteresis_db)
        self.olla_step_db = float(olla_step_db)
        self.target_fer = float(target_fer)
        self.olla_max_db = float(olla_max_db)
        self.extra_margin_db = 0.0
        self.current: ModcodOption | None = None

    @property
    def total_margin_db(self) -> float:
        """Margin in force: ``margin_db`` plus the outer loop's extra."""
        return self.margin_db + self.extra_margin_db

    def frame_result(self, ok: bool) -> None:
        """Outer loop: account one decoded (``ok``) or failed data frame."""
        if self.olla_step_db <= 0:
            return
        if ok:
            down = self.olla_step_db * self.target_fer / (1.0 - self.target_fer)
            self.extra_margin_db = max(0.0, self.extra_margin_db - down)
        else:
            self.extra_margin_db = min(self.olla_max_db, self.extra_margin_db + self.olla_step_db)

    def outage(self) -> None:
        """The link is gone (e.g. frame headers no longer found): no MODCOD until a new estimate."""
        self.current = None

    def decide(self, esn0_db: float) -> ModcodOption | None:
        """Update and return the MODCOD for an Es/N0 estimate (dB; NaN keeps the last decision)."""
        if esn0_db is None or not math.isfinite(esn0_db):
            return self.current
        m = self.total_margin_db
        fit = best_option(self.ladder, esn0_db, m)
        cur = self.current
        if cur is None or fit is None or fit.eta <= cur.eta:
            # first decision, outage, or the current MODCOD no longer fits: follow at once;
            # otherwise stay (fit below current only when current itself no longer fits)
            if cur is None or fit is None or cur.threshold_db + m > esn0_db:
                self.current = fit
            return self.current
        up = best_option(self.ladder, esn0_db, m + self.hysteresis_db)
        if up is not None and up.eta > cur.eta:
            self.current = up
        return self.current


# ---------------------------------------------------------------------------------------------
# the transmit queue (selective-repeat ARQ)


def merge_ranges(spans) -> list[tuple[int, int]]:
    """Sorted, merged [lo, hi) ranges from any iterable of (lo, hi) (empty ones dropped)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted((int(a), int(b)) for a, b in spans if b > a):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


@dataclass
class QueuedFrame:
    """A user frame held by :class:`TransmitQueue` until acknowledged.

    Attributes
    ----------
    seq : int
        Frame number, from 0.
    offset : int
        Position of the payload's first byte in the user byte stream.
    payload : bytes
    sends : int
        Times handed out for transmission.
    order : int
        Transmission number of the latest send (all sends of the queue are numbered).
    sent_at : float
        Queue clock at the latest send.
    """

    seq: int
    offset: int
    payload: bytes
    sends: int = 0
    order: int = -1
    sent_at: float = 0.0


@dataclass
class QueueStats:
    """Counters of a :class:`TransmitQueue` (bytes are user payload bytes)."""

    bytes_offered: int = 0
    bytes_acked: int = 0
    frames_created: int = 0
    frames_sent: int = 0
    frames_retransmitted: int = 0
    bytes_retransmitted: int = 0
    frames_acked: int = 0
    losses_detected: int = 0
    timeouts: int = 0
    acks: int = 0


class TransmitQueue:
    """User data from offer to acknowledgment, cut into numbered frames (selective-repeat ARQ).

    Parameters
    ----------
    capacity_bytes : int
        Most payload bytes held (waiting or unacknowledged); :meth:`offer` takes no more.
    payload_bytes : int
        Payload of a full user frame, bytes.
    rto_min : float
        Smallest retransmission timeout, in the clock's unit.
    rto_initial : float
        Timeout before any round trip has been measured.

    Notes
    -----
    Loss detection follows the order of transmissions, which the link keeps: when the far end
    acknowledges a frame, every unacknowledged frame sent before it was lost and is sent again
    first. Frames at the end of a burst, after which nothing arrives (a receiver that crashed),
    are sent again when the timeout expires: ``rto = max(rto_min, srtt + 4 rttvar)`` from the
    round trips of frames acknowledged after their first send.
    """

    def __init__(
        self,
        capacity_bytes: int = 1 << 24,
        payload_bytes: int = 2048,
        rto_min: float = 1.0,
        rto_initial: float | None = None,
    ):
        for name, v, lo in (("capacity_bytes", capacity_bytes, 1), ("payload_bytes", payload_bytes, 1)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}")
        if payload_bytes > capacity_bytes:
            raise ValueError(
                f"payload_bytes ({payload_bytes}) must not exceed capacity_bytes ({capacity_bytes})"
            )
        if not rto_min > 0:
            raise ValueError(f"rto_min must be > 0; got {rto_min!r}")
        self.capacity_bytes = int(capacity_bytes)
        self.payload_bytes = int(payload_bytes)
        self.rto_min = float(rto_min)
        self.rto = float(rto_initial if rto_initial is not None else 4 * rto_min)
        self._srtt: float | None = None
        self._rttvar = 0.0
        self.stats = QueueStats()
        self._new = bytearray()  # offered bytes; self._new[self._new_pos:] not yet cut into frames
        self._new_pos = 0
        self._new_offset = 0  # stream offset of the first byte not yet cut into frames
        self._next_seq = 0
        self._order = 0
        self._unacked: OrderedDict[int, QueuedFrame] = OrderedDict()  # in order of latest send
        self._resend: dict[int, QueuedFrame] = {}  # detected lost, waiting to go again
        self._resend_heap: list[int] = []
        self._held_bytes = 0  # payload bytes in frames not yet acknowledged
        self._cum_ack = 0  # every seq below this is acknowledged

    # -- the sender's side

    @property
    def held_bytes(self) -> int:
        """Payload bytes in the queue: waiting to be framed, to be sent, or unacknowledged."""
        return self._new_len + self._held_bytes

    def held_ranges(self) -> list[tuple[int, int]]:
        """Stream byte ranges [lo, hi) of everything :attr:`held_bytes` counts, merged, in order."""
        frames = (*self._unacked.values(), *self._resend.values())
        spans = [(f.offset, f.offset + len(f.payload)) for f in frames]
        if self._new_len:
            spans.append((self._new_offset, self._new_offset + self._new_len))
        return merge_ranges(spans)

    @property
    def _new_len(self) -> int:
        return len(self._new) - self._new_pos

    @property
    def room(self) -> int:
        """Bytes :meth:`offer` would take now."""
        return max(0, self.capacity_bytes - self.held_bytes)

    @property
    def unacked_frames(self) -> int:
        """Frames sent and neither acknowledged nor detected lost."""
        return len(self._unacked)

    @property
    def resend_frames(self) -> int:
        """Frames detected lost and waiting to be sent again."""
        return len(self._resend)

    @property
    def in_flight(self) -> bool:
        """Frames were sent and are neither acknowledged nor yet sent again."""
        return bool(self._unacked) or bool(self._resend)

    @property
    def empty(self) -> bool:
        """Nothing held: every offered byte was acknowledged."""
        return self.held_bytes == 0

    def offer(self, data) -> int:
        """Take as much of ``data`` as there is room for; return the number of bytes taken."""
        n = min(len(data), self.room)
        if n:
            self._new += memoryview(data)[:n]
            self.stats.bytes_offered += n
        return n

    def has_data(self, partial: bool = True) -> bool:
        """Whether :meth:`next_frame` would return a frame (``partial``: short frames allowed)."""
        return bool(self._resend) or self._new_len >= (1 if partial else self.payload_bytes)

    def next_frame(self, now: float, partial: bool = True, new: bool = True) -> QueuedFrame | None:
        """The next frame to transmit, or None; it counts as sent at ``now``.

        Order: frames detected lost (oldest first), then (if ``new``) new data cut into frames of
        ``payload_bytes`` (a shorter one from the last bytes when ``partial``).
        """
        self._check_timeouts(now)
        while self._resend_heap and self._resend_heap[0] not in self._resend:
            heapq.heappop(self._resend_heap)  # acknowledged while waiting to be sent again
        if self._resend:
            seq = heapq.heappop(self._resend_heap)
            f = self._resend.pop(seq)
            self.stats.frames_retransmitted += 1
            self.stats.bytes_retransmitted += len(f.payload)
        elif new and (self._new_len >= self.payload_bytes or (partial and self._new_len)):
            n = min(self.payload_bytes, self._new_len)
            p = self._new_pos
            f = QueuedFrame(self._next_seq, self._new_offset, bytes(self._new[p : p + n]))
            self._new_pos += n
            if self._new_pos > 1 << 16 and 2 * self._new_pos > len(self._new):  # compact: O(1) per byte
                del self._new[: self._new_pos]
                self._new_pos = 0
            self._new_offset += n
            self._next_seq += 1
            self._held_bytes += n
            self.stats.frames_created += 1
        else:
            return None
        f.sends += 1
        f.order = self._order
        f.sent_at = float(now)
        self._order += 1
        self._unacked[f.seq] = f
        self.stats.frames_sent += 1
        return f

    def _check_timeouts(self, now: float) -> None:
        while self._unacked:
            seq, f = next(iter(self._unacked.items()))
            if now - f.sent_at < self.rto:
                break
            self.stats.timeouts += 1
            self._mark_lost(seq)

    def _mark_lost(self, seq: int) -> None:
        f = self._unacked.pop(seq)
        self._resend[seq] = f
        heapq.heappush(self._resend_heap, seq)
        self.stats.losses_detected += 1

    # -- acknowledgments

    def ack(self, cumulative: int, ranges=(), now: float | None = None) -> int:
        """Process an acknowledgment from the far end; return the payload bytes newly acknowledged.

        Parameters
        ----------
        cumulative : int
            Every frame with ``seq < cumulative`` was delivered.
        ranges : iterable of (lo, hi)
            Frames ``lo <= seq < hi`` delivered beyond the cumulative point (selective acks).
        now : float, optional
            Clock at arrival, for the round-trip estimate.
        """
        self.stats.acks += 1
        newly = 0
        last_order = -1
        seqs = range(self._cum_ack, min(int(cumulative), self._next_seq))
        self._cum_ack = max(self._cum_ack, min(int(cumulative), self._next_seq))
        spans = [seqs] + [
            range(max(int(lo), self._cum_ack), min(int(hi), self._next_seq)) for lo, hi in ranges
        ]
        for span in spans:
            for seq in span:
                f = self._unacked.pop(seq, None)
                if f is None:
                    f = self._resend.pop(seq, None)  # acked after being declared lost: drop the resend
                    if f is None:
                        continue
                newly += len(f.payload)
                self._held_bytes -= len(f.payload)
                self.stats.frames_acked += 1
                last_order = max(last_order, f.order)
                if now is not None and f.sends == 1:
                    self._rtt_sample(now - f.sent_at)
        if len(self._resend_heap) > 2 * len(self._resend) + 64:
            self._resend_heap = sorted(self._resend)  # drop entries acknowledged meanwhile
        # frames sent before the latest delivered one and still unacknowledged were lost
        while self._unacked:
            seq, f = next(iter(self._unacked.items()))
            if f.order >= last_order:
                break
            self._mark_lost(seq)
        self.stats.bytes_acked += newly
        return newly

    def _rtt_sample(self, rtt: float) -> None:
        if rtt < 0:
            return
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        self.rto = max(self.rto_min, self._srtt + 4 * self._rttvar)
