"""DVB-S2 MODCODs and PLFRAME geometry (ETSI EN 302 307-1 §5.5, Tables 5a/5b, 12, 13).

The 28 MODCODs of the PLS code (§5.5.2.2) are read from ``modem/dvbs2/data/dvbs2_modcods.csv``.
:func:`frame_spec` gives, for one MODCOD, FECFRAME size and pilot setting, every length the
framing chain needs: BCH/LDPC block sizes, the BBFRAME data field, and the PLFRAME in symbols.

PLFRAME geometry (§5.5): a 90-symbol PLHEADER (26-symbol SOF + 64-symbol PLS code), then the
XFECFRAME of ``S = n_ldpc / (bits_per_symbol * 90)`` slots of 90 symbols. With pilots on
(§5.5.3), a 36-symbol pilot block follows every 16th slot except when that slot is the last one,
so a frame carries ``P = floor((S - 1) / 16)`` pilot blocks, and ``90 * (S + 1) + 36 * P`` symbols
in all (e.g. QPSK normal: S = 360, P = 22, 33282 symbols; 32APSK normal: S = 144, P = 8, not 9).
The spectral efficiencies of Table 13, (K_bch - 80) / PLFRAME symbols, follow from these lengths.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from modem.checks import check_choice

#: FECFRAME sizes: 64800 ("normal") and 16200 ("short") bits (§5.3).
FRAMES = ("normal", "short")
#: Modulations in MODCOD order (§5.4).
MODULATIONS = ("QPSK", "8PSK", "16APSK", "32APSK")

N_LDPC = {"normal": 64800, "short": 16200}  # bits per FECFRAME
BBHEADER_BITS = 80  # §5.1.6
PLHEADER_SYMBOLS = 90  # §5.5.2: SOF (26) + PLS code (64)
SLOT_SYMBOLS = 90  # §5.5.1
PILOT_BLOCK_SYMBOLS = 36  # §5.5.3
SLOTS_PER_PILOT_BLOCK = 16  # §5.5.3
#: PLS MODCOD 0 is the DUMMY PLFRAME (§5.5.1): PLHEADER + 36 slots of unmodulated carrier, no data.
DUMMY_PLFRAME_SYMBOLS = PLHEADER_SYMBOLS + 36 * SLOT_SYMBOLS


@dataclass(frozen=True)
class Modcod:
    """One DVB-S2 MODCOD (EN 302 307-1 §5.5.2.2, Table 12).

    Attributes
    ----------
    index : int
        PLS MODCOD field, 1..28.
    modulation : {"QPSK", "8PSK", "16APSK", "32APSK"}
    rate : str
        LDPC code rate label such as "1/2" (as in Tables 5a/5b; short frames use the same labels).
    bits_per_symbol : int
        2, 3, 4 or 5.
    gamma1, gamma2 : float or None
        APSK ring-radius ratios R2/R1 and R3/R1 (§5.4.3, §5.4.4); None where not defined.
    esn0_qef_db : float
        Es/N0 for quasi-error-free reception (PER 1e-7, AWGN, normal frames), dB (Table 13).
    eta_no_pilots, eta_pilots : float
        Spectral efficiency of normal frames without / with pilots, data-field bits per
        PLFRAME symbol (Table 13).
    """

    index: int
    modulation: str
    rate: str
    bits_per_symbol: int
    gamma1: float | None
    gamma2: float | None
    esn0_qef_db: float
    eta_no_pilots: float
    eta_pilots: float

    @property
    def name(self) -> str:
        """Name such as "QPSK 1/2"."""
        return f"{self.modulation} {self.rate}"

    @property
    def frames(self) -> tuple[str, ...]:
        """FECFRAME sizes defined for this MODCOD (rate 9/10 has no short frame)."""
        return tuple(f for f in FRAMES if (self.index, f) in _table()[1])

    def spec(self, frame: str = "normal", pilots: bool = False) -> FrameSpec:
        """Shortcut for :func:`frame_spec`."""
        return frame_spec(self, frame, pilots)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class FrameSpec:
    """Lengths of one MODCOD / FECFRAME size / pilot setting (EN 302 307-1 §5.1-5.5).

    Attributes
    ----------
    modcod : Modcod
    frame : {"normal", "short"}
    pilots : bool
    n_ldpc, k_ldpc : int
        LDPC codeword and message lengths, bits (N_bch = k_ldpc).
    k_bch : int
        BCH message length = BBFRAME length, bits.
    bch_t : int
        Errors the BCH code corrects.
    data_field_bits : int
        Largest BBFRAME data field, k_bch - 80 bits (DFL upper bound, §5.1.5).
    payload_symbols : int
        XFECFRAME symbols, n_ldpc / bits_per_symbol.
    slots : int
        Slots of 90 symbols, payload_symbols / 90.
    pilot_blocks : int
        36-symbol pilot blocks, floor((slots - 1) / 16) with pilots, else 0 (§5.5.3).
    plframe_symbols : int
        90 (PLHEADER) + payload_symbols + 36 * pilot_blocks.
    """

    modcod: Modcod
    frame: str
    pilots: bool
    n_ldpc: int
    k_ldpc: int
    k_bch: int
    bch_t: int
    data_field_bits: int
    payload_symbols: int
    slots: int
    pilot_blocks: int
    plframe_symbols: int

    @property
    def pilot_symbols(self) -> int:
        """Pilot symbols in the PLFRAME."""
        return PILOT_BLOCK_SYMBOLS * self.pilot_blocks

    @property
    def eta(self) -> float:
        """Spectral efficiency: data-field bits per PLFRAME symbol (as Table 13)."""
        return self.data_field_bits / self.plframe_symbols

    @property
    def pls_code(self) -> int:
        """7-bit PLS field (§5.5.2.2): MODCOD (5 bits), then TYPE = (short frame, pilots)."""
        return (self.modcod.index << 2) | ((self.frame == "short") << 1) | int(self.pilots)


# ---------------------------------------------------------------------------------------------
# the table


def _opt_float(s: str) -> float | None:
    return float(s) if s.strip() else None


@cache
def _table() -> tuple[tuple[Modcod, ...], dict[tuple[int, str], tuple[int, int, int]]]:
    """Return (MODCODs in index order, {(index, frame): (k_bch, k_ldpc, t)}) from the package CSV."""
    text = resources.files("modem.dvbs2.data").joinpath("dvbs2_modcods.csv").read_text()
    mods, codes = [], {}
    for row in csv.DictReader(io.StringIO(text)):
        m = Modcod(
            index=int(row["pls_modcod"]),
            modulation=row["modulation"],
            rate=row["rate"],
            bits_per_symbol=int(row["bits_per_symbol"]),
            gamma1=_opt_float(row["gamma1"]),
            gamma2=_opt_float(row["gamma2"]),
            esn0_qef_db=float(row["esn0_qef_normal_db"]),
            eta_no_pilots=float(row["eta_normal_no_pilots"]),
            eta_pilots=float(row["eta_normal_pilots"]),
        )
        mods.append(m)
        for frame in FRAMES:
            if row[f"kbch_{frame}"].strip():
                codes[(m.index, frame)] = (
                    int(row[f"kbch_{frame}"]), int(row[f"kldpc_{frame}"]), int(row[f"bch_t_{frame}"])
                )
    mods.sort(key=lambda m: m.index)
    if [m.index for m in mods] != list(range(1, 29)):
        raise RuntimeError("dvbs2_modcods.csv must list PLS MODCODs 1..28 once each")
    return tuple(mods), codes


#: All 28 MODCODs, index order (MODCODS[i].index == i + 1).
MODCODS: tuple[Modcod, ...] = _table()[0]
_BY_NAME = {m.name: m for m in MODCODS}

#: Every BBFRAME length K_bch (bits) of any MODCOD and frame size, ascending.
K_BCH_VALUES: tuple[int, ...] = tuple(sorted({v[0] for v in _table()[1].values()}))


def _valid_list() -> str:
    return "indices 1..28 or names " + ", ".join(_BY_NAME)


def modcod(x: Modcod | int | str) -> Modcod:
    """Look up a MODCOD by PLS index or name.

    Parameters
    ----------
    x : Modcod, int or str
        Index 1..28, or a name such as "QPSK 1/2", "qpsk-1/2", "32apsk_9/10" (case-insensitive;
        space, "-" or "_" between modulation and rate).

    Returns
    -------
    Modcod

    Raises
    ------
    ValueError
        For an unknown index or name (the message lists the valid ones), and for index 0, the
        DUMMY PLFRAME, which has no code or data (§5.5.1).
    """
    if isinstance(x, Modcod):
        return x
    if isinstance(x, bool):
        raise TypeError(f"modcod must be an int index, a name or a Modcod; got {x!r}")
    if isinstance(x, int):
        if x == 0:
            raise ValueError(
                "MODCOD index 0 is the DUMMY PLFRAME (EN 302 307-1 §5.5.1): it carries no FECFRAME; "
                f"use DUMMY_PLFRAME_SYMBOLS ({DUMMY_PLFRAME_SYMBOLS}) for its length. Valid: {_valid_list()}"
            )
        if 1 <= x <= 28:
            return MODCODS[x - 1]
        raise ValueError(f"unknown MODCOD index {x} (29..31 are reserved); valid: {_valid_list()}")
    if isinstance(x, str):
        key = re.sub(r"[\s_\-]+", " ", x.strip()).upper()
        if key in _BY_NAME:
            return _BY_NAME[key]
        if key in ("DUMMY", "0"):
            return modcod(0)
        raise ValueError(f"unknown MODCOD {x!r}; valid: {_valid_list()}")
    raise TypeError(f"modcod must be an int index, a name or a Modcod; got {type(x).__name__}")


@cache
def _frame_spec(index: int, frame: str, pilots: bool) -> FrameSpec:
    m = MODCODS[index - 1]
    codes = _table()[1]
    if (index, frame) not in codes:
        allowed = ", ".join(f"'{f}'" for f in m.frames)
        raise ValueError(f"MODCOD {m.name} has no {frame} frame; allowed: {allowed}")
    k_bch, k_ldpc, t = codes[(index, frame)]
    n = N_LDPC[frame]
    payload = n // m.bits_per_symbol
    slots = payload // SLOT_SYMBOLS
    blocks = (slots - 1) // SLOTS_PER_PILOT_BLOCK if pilots else 0
    return FrameSpec(
        modcod=m,
        frame=frame,
        pilots=pilots,
        n_ldpc=n,
        k_ldpc=k_ldpc,
        k_bch=k_bch,
        bch_t=t,
        data_field_bits=k_bch - BBHEADER_BITS,
        payload_symbols=payload,
        slots=slots,
        pilot_blocks=blocks,
        plframe_symbols=PLHEADER_SYMBOLS + payload + PILOT_BLOCK_SYMBOLS * blocks,
    )


def frame_spec(mc: Modcod | int | str, frame: str = "normal", pilots: bool = False) -> FrameSpec:
    """Lengths of a PLFRAME (EN 302 307-1 §5.1.5, §5.3, §5.5).

    Parameters
    ----------
    mc : Modcod, int or str
        MODCOD, as accepted by :func:`modcod`.
    frame : {"normal", "short"}
        FECFRAME size, 64800 or 16200 bits.
    pilots : bool
        Pilot blocks on (§5.5.3).

    Returns
    -------
    FrameSpec

    Raises
    ------
    ValueError
        Unknown MODCOD or frame size, or a short frame of a rate 9/10 MODCOD
        ("MODCOD QPSK 9/10 has no short frame; allowed: 'normal'").
    """
    m = modcod(mc)
    check_choice(frame, "frame", FRAMES)
    if isinstance(pilots, str) or pilots not in (False, True):
        raise ValueError(f"pilots must be True or False; got {pilots!r}")
    return _frame_spec(m.index, frame, bool(pilots))
