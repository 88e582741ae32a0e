"""An IIO context description (libiio's XML): devices, channels, attributes and scan formats.

Parses the XML a libiio server sends for ``PRINT`` into plain objects that the virtual
Pluto serves from: which devices and channels exist, which attributes each has, where an
attribute's value lives (attributes sharing one sysfs file share one value), and how the
buffer's channel mask maps onto channels. No sockets, no state.

Channel numbering follows libiio: a device's channels are ordered with the scan elements
first, by scan index (then by shift), the others after them in document order; a channel's
position in that order is its bit in the buffer mask (``OPEN dev samples MASK``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


class IioError(Exception):
    """An IIO operation failed with a Linux errno (the iiod protocol sends ``-errno``).

    Parameters
    ----------
    errno : int
        Positive errno value (``errno.EINVAL`` ...).
    message : str
        What went wrong, for logs (the protocol itself carries only the number).
    """

    def __init__(self, errno: int, message: str):
        super().__init__(message)
        self.errno = int(errno)


#: Attribute kinds, as the iiod protocol addresses them.
KINDS = ("channel", "device", "debug", "buffer")

_FORMAT_RE = re.compile(
    r"^(?P<endian>[bl])e:(?P<sign>[sSuU])(?P<bits>\d+)/(?P<storage>\d+)(?:X(?P<repeat>\d+))?>>(?P<shift>\d+)$"
)


@dataclass(frozen=True)
class ScanFormat:
    """A scan element's sample format, e.g. ``le:S12/16>>0``.

    Attributes
    ----------
    big_endian : bool
    signed : bool
    fully_defined : bool
        Upper-case letter: the value already fills the storage word (sign-extended).
    bits : int
        Significant bits.
    storage_bits : int
        Bits of storage per sample (8, 16, 32 or 64).
    shift : int
        Right shift that aligns the significant bits.
    repeat : int
        Values per sample (the ``X`` count), 1 for plain scan elements.
    """

    big_endian: bool
    signed: bool
    fully_defined: bool
    bits: int
    storage_bits: int
    shift: int
    repeat: int = 1

    @classmethod
    def parse(cls, text: str) -> ScanFormat:
        """Parse libiio's format string; ValueError names the bad text."""
        m = _FORMAT_RE.match(text)
        if not m:
            raise ValueError(f"scan-element format must look like 'le:S12/16>>0'; got {text!r}")
        storage = int(m["storage"])
        if storage not in (8, 16, 32, 64):
            raise ValueError(f"scan-element storage bits must be 8, 16, 32 or 64; got {storage} in {text!r}")
        return cls(
            big_endian=m["endian"] == "b",
            signed=m["sign"] in "sS",
            fully_defined=m["sign"].isupper(),
            bits=int(m["bits"]),
            storage_bits=storage,
            shift=int(m["shift"]),
            repeat=int(m["repeat"] or 1),
        )

    @property
    def bytes(self) -> int:
        """Bytes of one sample of this channel."""
        return self.storage_bits // 8 * self.repeat


@dataclass(eq=False)
class IioAttr:
    """One attribute: its name, kind and the key of the value it reads and writes.

    Attributes
    ----------
    name : str
    kind : {"channel", "device", "debug", "buffer"}
    key : tuple
        Identifies the value: channel attributes backed by the same sysfs file (``filename``)
        share one key, as they share one file on the real device.
    initial : str or None
        The value the context XML recorded; "ERROR" where the device could not read it.
    """

    name: str
    kind: str
    key: tuple
    initial: str | None


@dataclass(eq=False)
class IioChannel:
    """A channel of a device (input or output), with its attributes and scan format."""

    id: str
    name: str | None
    output: bool
    index: int  #: scan index, -1 for a channel that is not a scan element
    scan: ScanFormat | None
    attrs: dict[str, IioAttr] = field(default_factory=dict)
    number: int = -1  #: position in the device's libiio channel order = bit in the buffer mask


@dataclass(eq=False)
class IioDevice:
    """A device: channels in libiio order and device, debug and buffer attributes."""

    id: str
    name: str | None
    channels: list[IioChannel] = field(default_factory=list)
    attrs: dict[str, IioAttr] = field(default_factory=dict)
    debug_attrs: dict[str, IioAttr] = field(default_factory=dict)
    buffer_attrs: dict[str, IioAttr] = field(default_factory=dict)

    @property
    def mask_words(self) -> int:
        """32-bit words in this device's channel mask."""
        return (len(self.channels) + 31) // 32

    def channel(self, chan_id: str, output: bool) -> IioChannel | None:
        """The channel with this id and direction, or None."""
        for c in self.channels:
            if c.id == chan_id and c.output == output:
                return c
        return None

    def scan_channels(self) -> list[IioChannel]:
        """Channels that can stream through a buffer, in mask-bit order."""
        return [c for c in self.channels if c.scan is not None]

    def parse_mask(self, text: str) -> int:
        """Channel mask from the hex words of ``OPEN`` (most significant word first).

        Raises
        ------
        ValueError
            Wrong number of hex digits, not hex, or a bit set for a channel that is not a
            scan element.
        """
        if len(text) != 8 * self.mask_words or not re.fullmatch(r"[0-9a-fA-F]+", text):
            raise ValueError(
                f"mask of device {self.id} must be {8 * self.mask_words} hex digits; got {text!r}"
            )
        mask = int(text, 16)
        allowed = sum(1 << c.number for c in self.scan_channels())
        if mask & ~allowed or not mask:
            raise ValueError(f"mask {text} of device {self.id} enables no scan element or a non-scan channel")
        return mask

    def format_mask(self, mask: int) -> str:
        """Hex words of a channel mask, most significant word first (as iiod sends them)."""
        return "".join(f"{(mask >> (32 * w)) & 0xFFFFFFFF:08x}" for w in reversed(range(self.mask_words)))

    def enabled(self, mask: int) -> list[IioChannel]:
        """Scan channels whose bit is set in ``mask``, in sample order."""
        return [c for c in self.scan_channels() if mask >> c.number & 1]

    def sample_size(self, mask: int) -> int:
        """Bytes per sample (all enabled channels, each aligned to its own size, as libiio packs them)."""
        size = 0
        for c in self.enabled(mask):
            n = c.scan.bytes
            size = -(-size // n) * n + n
        return size


def _reorder(channels: list[IioChannel]) -> list[IioChannel]:
    """Libiio's channel order: scan elements first by (index, shift), the rest in document order."""
    scan = [c for c in channels if c.index >= 0]
    rest = [c for c in channels if c.index < 0]
    scan.sort(key=lambda c: (c.index, c.scan.shift if c.scan else 0))
    ordered = scan + rest
    for i, c in enumerate(ordered):
        c.number = i
    return ordered


class IioContext:
    """An IIO context parsed from libiio's XML.

    Parameters
    ----------
    xml : str
        The context XML (as ``iio_genxml`` or an iiod ``PRINT`` gives it).

    Attributes
    ----------
    xml : str
        The text served for ``PRINT``.
    name, description : str
    context_attrs : dict of str to str
    devices : list of IioDevice

    Raises
    ------
    ValueError
        The XML does not parse or is not a libiio context (the message says what is missing).
    """

    def __init__(self, xml: str):
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as e:
            raise ValueError(f"context XML does not parse: {e}") from None
        if root.tag != "context":
            raise ValueError(f"context XML must have a <context> root element; got <{root.tag}>")
        self.xml = xml
        self.name = root.get("name", "")
        self.description = root.get("description", "")
        self.context_attrs = {a.get("name"): a.get("value", "") for a in root.findall("context-attribute")}
        self.devices: list[IioDevice] = []
        for d in root.findall("device"):
            dev_id = d.get("id")
            if not dev_id:
                raise ValueError("context XML: a <device> has no id")
            dev = IioDevice(dev_id, d.get("name"))
            channels = []
            for c in d.findall("channel"):
                output = c.get("type") == "output"
                se = c.find("scan-element")
                scan = ScanFormat.parse(se.get("format", "")) if se is not None else None
                index = int(se.get("index")) if se is not None else -1
                chn = IioChannel(c.get("id"), c.get("name"), output, index, scan)
                for a in c.findall("attribute"):
                    name = a.get("name")
                    filename = a.get("filename")
                    key = (
                        ("file", dev_id, filename)
                        if filename
                        else ("chn", dev_id, "out" if output else "in", chn.id, name)
                    )
                    chn.attrs[name] = IioAttr(name, "channel", key, a.get("value"))
                channels.append(chn)
            dev.channels = _reorder(channels)
            for tag, kind, table in (
                ("attribute", "device", dev.attrs),
                ("debug-attribute", "debug", dev.debug_attrs),
                ("buffer-attribute", "buffer", dev.buffer_attrs),
            ):
                for a in d.findall(tag):
                    name = a.get("name")
                    table[name] = IioAttr(name, kind, (kind, dev_id, name), a.get("value"))
            self.devices.append(dev)

    @classmethod
    def from_file(cls, path) -> IioContext:
        """Load a context XML file."""
        return cls(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def pluto(cls) -> IioContext:
        """The ADALM-PLUTO context shipped with marslink (``hw/data/pluto_context.xml``)."""
        return cls(resources.files("hw.data").joinpath("pluto_context.xml").read_text(encoding="utf-8"))

    def device(self, ident: str) -> IioDevice | None:
        """The device with this id (``iio:device3``) or name (``cf-ad9361-lpc``), or None."""
        for d in self.devices:
            if d.id == ident:
                return d
        for d in self.devices:
            if d.name == ident:
                return d
        return None

    def all_attrs(self):
        """Every attribute of the context: (device, channel or None, IioAttr)."""
        for d in self.devices:
            for c in d.channels:
                for a in c.attrs.values():
                    yield d, c, a
            for table in (d.attrs, d.debug_attrs, d.buffer_attrs):
                for a in table.values():
                    yield d, None, a
