"""CCSDS Proximity-1 UHF link: PLTU framing, coding, BPSK modem, receiver and adaptive data rate."""

from modem.prox1.adr import AdrPolicy, Cn0Estimator, rate_ladder
from modem.prox1.coding import CODINGS, CSM, ChannelEncoder
from modem.prox1.config import DATA_RATES, REQUIRED_EBN0_DB, Prox1Config
from modem.prox1.pltu import ASM, IDLE_WORD, PltuDeframer, V3Header, pltu_bits, v3_frame
from modem.prox1.receiver import FrameReport, Receiver
from modem.prox1.transmitter import Transmitter

__all__ = [
    "ASM",
    "AdrPolicy",
    "Cn0Estimator",
    "rate_ladder",
    "CODINGS",
    "CSM",
    "DATA_RATES",
    "IDLE_WORD",
    "REQUIRED_EBN0_DB",
    "ChannelEncoder",
    "FrameReport",
    "PltuDeframer",
    "Prox1Config",
    "Receiver",
    "Transmitter",
    "V3Header",
    "pltu_bits",
    "v3_frame",
]
