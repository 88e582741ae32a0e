"""Registry of every LDPC code marslink knows, by name.

Names: ``dvbs2-normal-R`` (11 rates), ``dvbs2-short-R`` (10 rates),
``ar4ja-K-R`` (K = 1024, 4096, 16384; R = 1/2, 2/3, 4/5) and ``c2``.
"""

from __future__ import annotations

from modem.fec.ldpc_code import LdpcCode

AR4JA_K = (1024, 4096, 16384)
AR4JA_RATES = ("1/2", "2/3", "4/5")


def code_names() -> list[str]:
    """Every registered code name, DVB-S2 first, then CCSDS."""
    from modem.fec.dvbs2_ldpc import RATES

    names = [f"dvbs2-{frame}-{rate}" for frame in ("normal", "short") for rate in RATES[frame]]
    names += [f"ar4ja-{k}-{rate}" for k in AR4JA_K for rate in AR4JA_RATES]
    names.append("c2")
    return names


def get_code(name: str) -> LdpcCode:
    """Return the code registered under ``name`` (built once, then cached).

    Raises
    ------
    ValueError
        If ``name`` is not a registered code; the message lists the valid names.
    """
    names = code_names()
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"code must be one of {', '.join(names)}; got {name!r}")
    if name.startswith("dvbs2-"):
        from modem.fec.dvbs2_ldpc import dvbs2_code

        _, frame, rate = name.split("-")
        return dvbs2_code(frame, rate)
    from modem.fec.ccsds_ldpc import ar4ja_code, c2_code

    if name == "c2":
        return c2_code()
    _, k, rate = name.split("-")
    return ar4ja_code(int(k), rate)
