r"""GNU Radio gr-dtv DVB-S2 transmitter with GNU Radio's own RRC pulse shaping, for a recording.

Run with the system Python that has GNU Radio 3.10 (``/usr/bin/python3``), not marslink's
virtualenv (``captures/make_captures.py`` does that). Reads MPEG-TS packets (188 bytes, sync
byte 0x47), runs gr-dtv's chain (BBHEADER, BB scrambler, BCH, LDPC, interleaver, modulator,
PL framing; its output is each PLFRAME symbol followed by a zero sample) and shapes it with
a root-raised-cosine FIR from GNU Radio's ``firdes`` (2 samples per symbol, 33 taps: the first
symbol's pulse peaks at sample 16). Writes complex64.

    /usr/bin/python3 captures/grdtv_shaped_tx.py --frame short --rate 3/5 --modulation 8PSK \\
        --frames 12 in.ts out.cf32
"""

import argparse

from gnuradio import blocks, dtv, filter, gr
from gnuradio.filter import firdes

RATES = {
    "1/4": dtv.C1_4,
    "1/3": dtv.C1_3,
    "2/5": dtv.C2_5,
    "1/2": dtv.C1_2,
    "3/5": dtv.C3_5,
    "2/3": dtv.C2_3,
    "3/4": dtv.C3_4,
    "4/5": dtv.C4_5,
    "5/6": dtv.C5_6,
    "8/9": dtv.C8_9,
    "9/10": dtv.C9_10,
}
MODULATIONS = {"QPSK": dtv.MOD_QPSK, "8PSK": dtv.MOD_8PSK, "16APSK": dtv.MOD_16APSK, "32APSK": dtv.MOD_32APSK}
BITS = {"QPSK": 2, "8PSK": 3, "16APSK": 4, "32APSK": 5}
FRAMES = {"normal": (dtv.FECFRAME_NORMAL, 64800), "short": (dtv.FECFRAME_SHORT, 16200)}
SPS = 2
TAPS = 33  # span 16 symbols at 2 samples/symbol


def plframe_symbols(frame: str, modulation: str, pilots: bool) -> int:
    """PLFRAME length in symbols (EN 302 307-1 §5.5)."""
    slots = FRAMES[frame][1] // BITS[modulation] // 90
    return 90 * (slots + 1) + (36 * ((slots - 1) // 16) if pilots else 0)


def main():
    """Parse the command line, run the flowgraph once."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", choices=FRAMES, default="short")
    p.add_argument("--rate", choices=RATES, default="3/5")
    p.add_argument("--modulation", choices=MODULATIONS, default="8PSK")
    p.add_argument("--pilots", choices=("on", "off"), default="on")
    p.add_argument("--frames", type=int, required=True, help="PLFRAMEs to write")
    p.add_argument("input")
    p.add_argument("output")
    a = p.parse_args()
    fs = FRAMES[a.frame][0]
    rate, mod = RATES[a.rate], MODULATIONS[a.modulation]
    with open(a.input, "rb") as f:
        data = list(f.read())
    n = SPS * a.frames * plframe_symbols(a.frame, a.modulation, a.pilots == "on")
    tb = gr.top_block()
    chain = [
        blocks.vector_source_b(data, False),
        dtv.dvb_bbheader_bb(
            dtv.STANDARD_DVBS2, fs, rate, dtv.RO_0_35, dtv.INPUTMODE_NORMAL, dtv.INBAND_OFF, 168, 4000000
        ),
        dtv.dvb_bbscrambler_bb(dtv.STANDARD_DVBS2, fs, rate),
        dtv.dvb_bch_bb(dtv.STANDARD_DVBS2, fs, rate),
        dtv.dvb_ldpc_bb(dtv.STANDARD_DVBS2, fs, rate, dtv.MOD_OTHER),
        dtv.dvbs2_interleaver_bb(fs, rate, mod),
        dtv.dvbs2_modulator_bc(fs, rate, mod, dtv.INTERPOLATION_OFF),
        dtv.dvbs2_physical_cc(fs, rate, mod, dtv.PILOTS_ON if a.pilots == "on" else dtv.PILOTS_OFF, 0),
        blocks.head(gr.sizeof_gr_complex, n),
    ]
    # the frames, then TAPS - 1 zeros so that the filter's tail (the last pulses) comes out too
    mux = blocks.stream_mux(gr.sizeof_gr_complex, [n, TAPS - 1])
    zeros = blocks.vector_source_c([0j] * (TAPS - 1), False)
    rrc = filter.fir_filter_ccf(1, firdes.root_raised_cosine(float(SPS), float(SPS), 1.0, 0.35, TAPS))
    tb.connect(*chain)
    tb.connect(chain[-1], (mux, 0))
    tb.connect(zeros, (mux, 1))
    tb.connect(
        mux,
        rrc,
        blocks.head(gr.sizeof_gr_complex, n + TAPS - 1),
        blocks.file_sink(gr.sizeof_gr_complex, a.output, False),
    )
    tb.run()


if __name__ == "__main__":
    main()
