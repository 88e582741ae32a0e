"""A virtual ADALM-PLUTO: an iiod server on 127.0.0.1 that pyadi-iio and libiio use like the radio.

:class:`VirtualPluto` presents a real PlutoSDR's IIO context (``hw/data/pluto_context.xml``,
AD9363, firmware v0.32) over libiio 0.2x's network protocol (:mod:`hw.iiod_server`), keeps
its attribute state and rejects out-of-range writes as the driver does
(:mod:`hw.ad9361_model`), and loops TX buffers through a channel model into RX buffers
(:mod:`hw.virtual_rf`), paced at the sample rate or as fast as the receiver reads. The
unmodified client stack works against it::

    with VirtualPluto(port=0) as vp:
        sdr = adi.Pluto(vp.uri)              # "ip:127.0.0.1:PORT"
        sdr.sample_rate = 2_000_000
        sdr.tx(iq * 2**14)
        rx = sdr.rx()

``marslink virtual-pluto`` runs one from the command line (see
:mod:`flowgraphs.commands.virtual_pluto`).
"""

from __future__ import annotations

import threading

from hw.ad9361_model import RX_CORE, TX_CORE, PlutoModel
from hw.iio_context import IioContext, IioError
from hw.iiod_server import DEFAULT_PORT, IiodServer
from hw.virtual_rf import PathStats, RfPath


class _Backend:
    """Glue between the protocol server and the Pluto model / RF path (one lock for both)."""

    def __init__(self, model: PlutoModel, rf: RfPath, lock):
        self.model = model
        self.rf = rf
        self.lock = lock

    def read_attr(self, dev, chn, attr) -> str:
        with self.lock:
            return self.model.read(dev, chn, attr)

    def write_attr(self, dev, chn, attr, text: str) -> None:
        with self.lock:
            self.model.write(dev, chn, attr, text)

    @staticmethod
    def _cols(dev, mask: int) -> list[int]:
        return [0 if c.id == "voltage0" else 1 for c in dev.enabled(mask)]

    def open(self, owner, dev, samples: int, mask: int, cyclic: bool) -> None:
        if dev.name not in (RX_CORE, TX_CORE):
            raise IioError(19, f"{dev.name} has no buffer")  # ENODEV
        self.rf.open(owner, dev.name, samples, self._cols(dev, mask), cyclic)

    def close(self, owner, dev) -> None:
        self.rf.close(owner, dev.name)

    def close_all(self, owner) -> None:
        self.rf.close_all(owner)

    def readbuf(self, owner, dev, mask: int, nsamples: int):
        if dev.name != RX_CORE:
            raise IioError(9, f"{dev.name} is not an input device")  # EBADF
        return self.rf.read(owner, nsamples)

    def writebuf(self, owner, dev, mask: int, data) -> None:
        if dev.name != TX_CORE:
            raise IioError(9, f"{dev.name} is not an output device")  # EBADF
        self.rf.write(owner, data)

    def set_buffers_count(self, dev, n: int) -> None:
        with self.lock:
            self.model.kernel_buffers[dev.id] = n


class VirtualPluto:
    """A virtual PlutoSDR served on a local TCP port.

    Parameters
    ----------
    port : int
        TCP port; 0 picks a free one (read :attr:`port` / :attr:`uri` after :meth:`start`).
        libiio's default is 30431 (``ip:127.0.0.1`` without a port).
    host : str
        Listening address (default loopback only).
    channel : callable or None
        Channel model factory ``channel(sample_rate_hz) -> block`` (``y = block(x)`` on
        complex64, e.g. a :class:`modem.channel.Chain`); rebuilt when the sample rate changes.
        See :func:`hw.virtual_channel.channel_factory`. None: noiseless, no impairments.
    realtime : bool
        Pace TX and RX at the sample rate (with overflow/underflow as on the radio) instead of
        running as fast as the RX side reads.
    path_loss_db : float
        Loss between the TX and RX ports (dB).
    context : IioContext or None
        The IIO context to present (default: the shipped PlutoSDR context).

    Attributes
    ----------
    model : PlutoModel
        Attribute state (rates, LOs, gains, DMA status registers).
    rf : RfPath
        The sample path and its :class:`~hw.virtual_rf.PathStats`.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        channel=None,
        realtime: bool = False,
        path_loss_db: float = 40.0,
        context: IioContext | None = None,
    ):
        if channel is not None and not callable(channel):
            raise TypeError(f"channel must be a factory channel(sample_rate_hz) -> block; got {channel!r}")
        self.context = context or IioContext.pluto()
        self.lock = threading.RLock()
        self.model = PlutoModel(self.context)
        self.rf = RfPath(
            self.model, self.lock, channel_factory=channel, realtime=realtime, path_loss_db=path_loss_db
        )
        self.server = IiodServer(self.context, _Backend(self.model, self.rf, self.lock), host=host, port=port)

    @property
    def port(self) -> int:
        """TCP port served."""
        return self.server.port

    @property
    def uri(self) -> str:
        """Libiio URI of this radio: ``ip:HOST:PORT`` (or ``ip:HOST`` on the default port)."""
        if self.port == DEFAULT_PORT:
            return f"ip:{self.server.host}"
        return f"ip:{self.server.host}:{self.port}"

    @property
    def stats(self) -> PathStats:
        """Sample counts of the RF path (TX in, RX out, underflow, overflow, clipping)."""
        return self.rf.stats

    def start(self) -> VirtualPluto:
        """Start serving; returns self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every client connection."""
        self.server.stop()

    def __enter__(self) -> VirtualPluto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
