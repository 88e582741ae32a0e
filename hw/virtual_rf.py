"""The virtual Pluto's sample path: TX DMA queue, DAC, channel model, gain, ADC, RX DMA ring.

:class:`RfPath` moves samples from the TX buffer a client pushes (``WRITEBUF``) to the RX
buffer a client reads (``READBUF``), through:

1. the DAC: the TX core takes 16-bit words and the AD9361 keeps their top 12 bits
   (so pyadi-iio's convention of scaling to +-2^14 is half of full scale);
2. the LO difference: TX and RX LOs that differ shift the signal by ``tx_lo - rx_lo``
   (phase-continuous); beyond half the RX RF bandwidth the signal is lost;
3. the channel model (any block ``y = block(x)`` of :mod:`modem.channel`; default none),
   applied to the signal at DAC full scale, so the Es/N0 it sets does not depend on gains;
4. gain: ``tx_hardwaregain + rx_gain - path_loss_db`` (dB); in the AGC modes the RX gain
   follows the signal (target -12 dBFS RMS; "fast_attack" jumps to the gain that puts the
   chunk being processed on target, "slow_attack" and "hybrid" move at most 3 dB down / 1 dB
   up per chunk), in integer dB within the gain table's range;
5. the ADC: 12-bit signed samples (-2048..2047) in 16-bit words, clipping counted.

Debug ``loopback`` 1 (digital) sends the TX data's 12 bits straight to RX, bypassing 2-5.

Timing. ``realtime=True``: a sample clock runs at the RX sample rate from start-up, as on the
radio. RX samples exist from the moment the RX buffer is opened; when the client does not
read them in time and all kernel buffers (``SET dev BUFFERS_COUNT``, default 4) are full,
new samples are lost and the RX core's overflow bit is set. A TX push waits while the
kernel buffers are full; when the queue runs dry mid-stream, the DAC sends zeros and the TX
core's underflow bit is set. ``realtime=False`` (as fast as possible): the clock advances
only when the RX side reads, so a TX burst waits in the queue until it is received and RX
never overflows; the TX queue holds up to ``max_queue_samples``.

TX and RX streams at different rates (the FPGA's 8x filters on one side only) are converted
by repeating or dropping samples (the FPGA's filters themselves are not modelled).
"""

from __future__ import annotations

import errno
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hw.ad9361_model import RX_CORE, RX_OVERFLOW_BIT, TX_CORE, TX_UNDERFLOW_BIT, PlutoModel, rx_gain_range
from hw.iio_context import IioError

ADC_FULL_SCALE = 2048  #: 12-bit ADC: samples -2048..2047
DAC_SHIFT = 4  #: the AD9361 keeps the top 12 of the TX core's 16 bits
AGC_TARGET_DBFS = -12.0
CHUNK = 1 << 16  #: most samples processed at once when catching up with the clock


@dataclass
class PathStats:
    """Sample counts of the virtual RF path (since start).

    Attributes
    ----------
    tx_samples : int
        Samples pushed by clients (at the TX stream rate).
    rx_samples : int
        Samples delivered to clients.
    tx_underflow_samples : int
        Zero samples the DAC sent because the TX queue ran dry mid-stream.
    rx_overflow_samples : int
        RX samples lost because every kernel buffer was full (realtime mode only).
    tx_unheard_samples : int
        TX samples dropped from a full queue while no RX buffer was open (fast mode).
    adc_clipped : int
        RX samples with I or Q at the ADC's limits.
    """

    tx_samples: int = 0
    rx_samples: int = 0
    tx_underflow_samples: int = 0
    rx_overflow_samples: int = 0
    tx_unheard_samples: int = 0
    adc_clipped: int = 0


@dataclass
class _Stream:
    owner: object
    samples_count: int
    cols: list[int]  # per enabled channel in sample order: 0 = I, 1 = Q
    cyclic: bool = False
    started: bool = False
    cyclic_block: np.ndarray | None = None
    cyclic_pos: int = 0
    ring: deque = field(default_factory=deque)
    ring_samples: int = 0


class RfPath:
    """Sample path of a virtual Pluto (see the module docstring).

    Parameters
    ----------
    model : PlutoModel
        Attribute state: rates, LOs, gains, loopback; DMA status bits are set on it.
    lock : threading.RLock
        The lock that also guards ``model`` (attribute writes and streaming interleave).
    channel_factory : callable or None
        ``channel_factory(sample_rate_hz) -> block`` with ``y = block(x)`` on complex64; called
        at start and after every sample-rate change. None: no channel model.
    realtime : bool
        Pace the streams at the sample rate (True) or run as fast as the RX side reads.
    path_loss_db : float
        Loss between the TX and RX ports (dB), on top of the TX attenuation.
    max_queue_samples : int
        TX queue limit in fast mode (samples).
    clock : callable
        Monotonic time source in seconds (tests may pass their own).
    """

    def __init__(
        self,
        model: PlutoModel,
        lock,
        channel_factory=None,
        realtime: bool = False,
        path_loss_db: float = 40.0,
        max_queue_samples: int = 1 << 22,
        clock=time.monotonic,
    ):
        if not math.isfinite(path_loss_db):
            raise ValueError(f"path_loss_db must be finite; got {path_loss_db}")
        self.model = model
        self.cond = threading.Condition(lock)
        self.realtime = bool(realtime)
        self.path_loss_db = float(path_loss_db)
        self.max_queue_samples = int(max_queue_samples)
        self.clock = clock
        self.channel_factory = channel_factory
        self.stats = PathStats()
        self.timeout_s = 10.0
        self._tx: _Stream | None = None
        self._rx: _Stream | None = None
        self._txq: deque[np.ndarray] = deque()
        self._txq_samples = 0
        self._txq_head = 0
        self._resample_phase = 0
        self._lo_phase = 0.0
        self._n_air = 0
        self._t_ref = clock()
        self._n_ref = 0
        self._channel = channel_factory(model.rx_rate_hz) if channel_factory else None
        model.rate_listeners.append(self._rate_changed)

    # -- clock -------------------------------------------------------------------------
    def _rate_changed(self) -> None:
        if self.realtime:
            self._advance(self._now_index())
        self._n_ref, self._t_ref = self._n_air, self.clock()
        if self.channel_factory:
            self._channel = self.channel_factory(self.model.rx_rate_hz)

    def _now_index(self) -> int:
        return self._n_ref + int((self.clock() - self._t_ref) * self.model.rx_rate_hz)

    @property
    def air_samples(self) -> int:
        """Samples the air has carried since start (the stream clock, at the RX rate)."""
        return self._n_air

    # -- buffers -------------------------------------------------------------------------
    def open(self, owner, device_name: str, samples_count: int, cols: list[int], cyclic: bool) -> None:
        """Open the RX or TX stream for ``owner`` (one client per direction).

        Raises
        ------
        IioError
            EBUSY when another client holds the stream; EINVAL for cyclic RX or zero samples.
        """
        with self.cond:
            if samples_count <= 0:
                raise IioError(errno.EINVAL, f"buffer of {samples_count} samples")
            if self.realtime:
                self._advance(self._now_index())
            stream = _Stream(owner, int(samples_count), list(cols), cyclic=bool(cyclic))
            if device_name == TX_CORE:
                if self._tx is not None:
                    raise IioError(errno.EBUSY, "TX buffer already open")
                self._tx = stream
            elif device_name == RX_CORE:
                if cyclic:
                    raise IioError(errno.EINVAL, "RX buffers cannot be cyclic")
                if self._rx is not None:
                    raise IioError(errno.EBUSY, "RX buffer already open")
                self._rx = stream
            else:
                raise IioError(errno.ENODEV, f"device {device_name} has no buffer")
            self.cond.notify_all()

    def close(self, owner, device_name: str) -> None:
        """Close ``owner``'s stream (queued TX samples stay in the air and are still sent)."""
        with self.cond:
            if self.realtime:
                self._advance(self._now_index())
            if device_name == TX_CORE and self._tx is not None and self._tx.owner is owner:
                self._tx = None  # a cyclic buffer stops with its DMA; queued samples still go out
            elif device_name == RX_CORE and self._rx is not None and self._rx.owner is owner:
                self._rx = None
            else:
                raise IioError(errno.ENXIO, f"{device_name} is not open by this client")
            self.cond.notify_all()

    def close_all(self, owner) -> None:
        """Close every stream ``owner`` holds (a client disconnected)."""
        with self.cond:
            for name, stream in ((TX_CORE, self._tx), (RX_CORE, self._rx)):
                if stream is not None and stream.owner is owner:
                    self.close(owner, name)

    def is_open(self, owner, device_name: str) -> bool:
        """Whether ``owner`` holds the stream of this core."""
        stream = self._tx if device_name == TX_CORE else self._rx if device_name == RX_CORE else None
        return stream is not None and stream.owner is owner

    # -- TX ------------------------------------------------------------------------------
    def _dac(self, words: np.ndarray, cols: list[int]) -> np.ndarray:
        """int16 words (n, channels) -> complex64 at DAC full scale, top 12 bits kept."""
        v = (words >> DAC_SHIFT).astype(np.float32)
        v *= np.float32(1 / ADC_FULL_SCALE)
        if cols == [0, 1]:
            return v.view(np.complex64).ravel()
        x = np.zeros(words.shape[0], dtype=np.complex64)
        for j, col in enumerate(cols):
            if col == 0:
                x.real = v[:, j]
            else:
                x.imag = v[:, j]
        return x

    def _to_air_rate(self, x: np.ndarray) -> np.ndarray:
        tx8, rx8 = self.model.tx_interpolate8, self.model.rx_decimate8
        if tx8 == rx8:
            return x
        if tx8:  # TX stream is 8x slower than the air: hold each sample
            return np.repeat(x, 8)
        start = (-self._resample_phase) % 8
        out = x[start::8]
        self._resample_phase = (self._resample_phase + x.size) % 8
        return out

    def write(self, owner, data) -> int:
        """Queue a TX buffer (``WRITEBUF``): little-endian int16 words, channels interleaved.

        Returns
        -------
        int
            Bytes accepted.

        Raises
        ------
        IioError
            EBADF without an open TX buffer; EBUSY for a second push of a cyclic buffer;
            ETIMEDOUT when the queue stays full for ``timeout_s``.
        """
        with self.cond:
            tx = self._tx
            if tx is None or tx.owner is not owner:
                raise IioError(errno.EBADF, "TX buffer not open")
            ncols = len(tx.cols)
            words = np.frombuffer(data, dtype="<i2")
            n = words.size // ncols
            x = self._to_air_rate(self._dac(words[: n * ncols].reshape(n, ncols), tx.cols))
            self.stats.tx_samples += n
            if tx.cyclic:
                if tx.cyclic_block is not None:
                    raise IioError(errno.EBUSY, "cyclic TX buffer already pushed")
                if self.realtime:
                    self._advance(self._now_index())
                tx.cyclic_block = x
                tx.started = True
                return len(data)
            deadline = self.clock() + self.timeout_s
            while True:
                if self.realtime:
                    self._advance(self._now_index())
                    capacity = self.model.kernel_buffers[self.model.tx_core.id] * max(
                        tx.samples_count, x.size
                    )
                    room = capacity - self._txq_samples
                    if room >= x.size or self._txq_samples == 0:
                        break
                    wait = (x.size - room) / self.model.rx_rate_hz
                else:
                    if self._txq_samples + x.size <= self.max_queue_samples:
                        break
                    if self._rx is None:
                        self._drop_tx(self._txq_samples + x.size - self.max_queue_samples)
                        break
                    wait = 0.05
                if self.clock() + wait > deadline:
                    raise IioError(errno.ETIMEDOUT, "TX queue full")
                self.cond.wait(wait)
                if self._tx is not tx:
                    raise IioError(errno.EBADF, "TX buffer closed while waiting")
            self._txq.append(x)
            self._txq_samples += x.size
            tx.started = True
            self.cond.notify_all()
            return len(data)

    def _drop_tx(self, n: int) -> None:
        self.stats.tx_unheard_samples += n
        self._take_tx(n, keep=False)

    def _take_tx(self, n: int, keep: bool = True) -> np.ndarray | None:
        """The next ``n`` DAC samples (zeros where no data); underflow flagged mid-stream."""
        out = np.zeros(n, dtype=np.complex64) if keep else None
        tx = self._tx
        if tx is not None and tx.cyclic and tx.cyclic_block is not None:
            block = tx.cyclic_block
            if keep:
                idx = (tx.cyclic_pos + np.arange(n)) % block.size
                out[:] = block[idx]
            tx.cyclic_pos = (tx.cyclic_pos + n) % block.size
            return out
        got = 0
        while got < n and self._txq:
            head = self._txq[0]
            k = min(n - got, head.size - self._txq_head)
            if keep:
                out[got : got + k] = head[self._txq_head : self._txq_head + k]
            got += k
            self._txq_head += k
            if self._txq_head == head.size:
                self._txq.popleft()
                self._txq_head = 0
        self._txq_samples -= got
        if got < n and tx is not None and tx.started and not tx.cyclic:
            self.stats.tx_underflow_samples += n - got
            self.model.set_status(TX_CORE, TX_UNDERFLOW_BIT)
        return out

    # -- RX ------------------------------------------------------------------------------
    def _receive(self, x: np.ndarray) -> np.ndarray:
        """DAC-scale samples -> 12-bit ADC samples, int16 (n, 2) as I, Q."""
        m = self.model
        scale = float(ADC_FULL_SCALE)
        y = x
        if m.loopback != 1:
            offset = m.tx_lo_hz - m.rx_lo_hz
            if offset:
                if abs(offset) > m.rx_bandwidth_hz / 2:
                    y = np.zeros_like(x)
                else:
                    step = 2 * np.pi * offset / m.rx_rate_hz
                    ph = self._lo_phase + step * np.arange(x.size)
                    y = (x * np.exp(1j * ph)).astype(np.complex64)
                    self._lo_phase = float((self._lo_phase + step * x.size) % (2 * np.pi))
            if self._channel is not None:
                y = np.asarray(self._channel(y), dtype=np.complex64)
            pre_db = m.tx_gain_db - self.path_loss_db
            if m.gain_mode != "manual":
                self._agc(y, pre_db)
            scale *= 10 ** ((pre_db + m.rx_gain_db) / 20)
        q = np.ascontiguousarray(y, dtype=np.complex64).view(np.float32).reshape(-1, 2) * np.float32(scale)
        np.rint(q, out=q)
        if q.size and (q.max() > ADC_FULL_SCALE - 1 or q.min() < -ADC_FULL_SCALE):
            clipped = (q < -ADC_FULL_SCALE) | (q > ADC_FULL_SCALE - 1)
            self.stats.adc_clipped += int(np.count_nonzero(clipped.any(axis=1)))
            np.clip(q, -ADC_FULL_SCALE, ADC_FULL_SCALE - 1, out=q)
        return q.astype(np.int16)

    def _agc(self, y: np.ndarray, pre_db: float) -> None:
        """Move the RX gain toward the one that puts this chunk (power before RX gain) at the target."""
        m = self.model
        lo, hi = rx_gain_range(m.rx_lo_hz)
        power = float(np.vdot(y, y).real) / y.size if y.size else 0.0
        if power > 0:
            want = AGC_TARGET_DBFS - 10 * math.log10(power) - pre_db
        else:
            want = hi
        if m.gain_mode == "fast_attack":
            new = want
        else:
            new = m.rx_gain_db + min(max(want - m.rx_gain_db, -3.0), 1.0)
        m.rx_gain_db = float(min(max(round(new), lo), hi))

    def _advance(self, target: int) -> None:
        """Run the air up to stream index ``target`` (realtime mode)."""
        rx = self._rx
        while self._n_air < target:
            k = min(target - self._n_air, CHUNK)
            tx_idle = not self._txq and (self._tx is None or not self._tx.started)
            if rx is None:
                if tx_idle:
                    k = target - self._n_air  # nothing to send, nobody listening: jump
                else:
                    self._take_tx(k, keep=False)
            else:
                room = max(0, self._rx_capacity() - rx.ring_samples)
                m = min(k, room)
                if m:
                    rx.ring.append(self._receive(self._take_tx(m)))
                    rx.ring_samples += m
                if k > m:
                    self._take_tx(k - m, keep=False)
                    self.stats.rx_overflow_samples += k - m
                    self.model.set_status(RX_CORE, RX_OVERFLOW_BIT)
            self._n_air += k

    def _rx_capacity(self) -> int:
        rx = self._rx
        return self.model.kernel_buffers[self.model.rx_core.id] * rx.samples_count

    def read(self, owner, nsamples: int) -> np.ndarray:
        """Samples for ``READBUF``: int16 array (nsamples, channels) in the enabled channels' order.

        Raises
        ------
        IioError
            EBADF without an open RX buffer; ETIMEDOUT if the samples do not come within
            ``timeout_s`` (realtime mode).
        """
        with self.cond:
            rx = self._rx
            if rx is None or rx.owner is not owner:
                raise IioError(errno.EBADF, "RX buffer not open")
            if not self.realtime:
                iq = self._receive(self._take_tx(nsamples))
                self._n_air += nsamples
                self.cond.notify_all()
            else:
                deadline = self.clock() + self.timeout_s
                while True:
                    self._advance(self._now_index())
                    if rx.ring_samples >= nsamples:
                        break
                    wait = (nsamples - rx.ring_samples) / self.model.rx_rate_hz
                    if self.clock() > deadline:
                        raise IioError(errno.ETIMEDOUT, "RX samples did not arrive")
                    self.cond.wait(max(wait, 1e-4))
                    if self._rx is not rx:
                        raise IioError(errno.EBADF, "RX buffer closed while waiting")
                iq = self._pop(rx, nsamples)
            self.stats.rx_samples += nsamples
            return iq[:, rx.cols] if rx.cols != [0, 1] else iq

    @staticmethod
    def _pop(rx: _Stream, n: int) -> np.ndarray:
        parts = []
        got = 0
        while got < n:
            head = rx.ring[0]
            k = min(n - got, head.shape[0])
            parts.append(head[:k])
            if k == head.shape[0]:
                rx.ring.popleft()
            else:
                rx.ring[0] = head[k:]
            got += k
        rx.ring_samples -= n
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
