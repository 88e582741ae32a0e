"""GNU Radio gr-dtv DVB-S2 transmitter with GNU Radio's RRC pulse shaping: TS packets in, IQ out.

Run with the system Python that has GNU Radio 3.10 (``/usr/bin/python3``), not the project's
virtualenv; ``tests/test_dvbs2_rx_iq.py`` drives it in a subprocess. The chain is gr-dtv's
transmitter (BBHEADER in normal input mode, BB scrambler, BCH, LDPC, bit interleaver, modulator,
PL framing with pilots as chosen; the PL framer writes each symbol followed by a zero sample,
i.e. 2 samples per symbol ready for an interpolating filter) followed by a root-raised-cosine
FIR designed by GNU Radio (``filter.firdes.root_raised_cosine``, gain 2 so that the pulses
peak at the symbol values, ``taps`` taps) at 2 samples per symbol. The zero-stuffed frames are
followed by ``taps`` - 1 zeros so that the filter's tail comes out too. Writes complex64.

    /usr/bin/python3 tests/gr/grdtv_dvbs2_iq.py --batch cases.json

``cases.json`` holds a list of objects with the keys ``input`` (file of 188-byte TS packets),
``output`` (complex64 file), ``frames`` (PLFRAMEs to shape; the input must fill them) and
optionally ``frame`` ("normal"/"short"), ``rate`` ("1/2" ...), ``modulation`` ("QPSK" ...),
``pilots`` ("on"/"off"), ``goldcode``, ``rolloff`` ("0.35"/"0.25"/"0.20") and ``taps``.
"""

import argparse
import json

from gnuradio import blocks, dtv, filter, gr

RATES = {
    "1/4": dtv.C1_4, "1/3": dtv.C1_3, "2/5": dtv.C2_5, "1/2": dtv.C1_2, "3/5": dtv.C3_5, "2/3": dtv.C2_3,
    "3/4": dtv.C3_4, "4/5": dtv.C4_5, "5/6": dtv.C5_6, "8/9": dtv.C8_9, "9/10": dtv.C9_10,
}
MODULATIONS = {"QPSK": dtv.MOD_QPSK, "8PSK": dtv.MOD_8PSK, "16APSK": dtv.MOD_16APSK, "32APSK": dtv.MOD_32APSK}
BITS_PER_SYMBOL = {"QPSK": 2, "8PSK": 3, "16APSK": 4, "32APSK": 5}
FRAMES = {"normal": (dtv.FECFRAME_NORMAL, 64800), "short": (dtv.FECFRAME_SHORT, 16200)}
ROLLOFFS = {"0.35": dtv.RO_0_35, "0.25": dtv.RO_0_25, "0.20": dtv.RO_0_20}
DEFAULTS = {"frame": "normal", "rate": "1/2", "modulation": "QPSK", "pilots": "on", "goldcode": 0,
            "rolloff": "0.35", "taps": 33}
SPS = 2


def plframe_symbols(frame, modulation, pilots):
    """PLFRAME length in symbols (EN 302 307-1 §5.5)."""
    slots = FRAMES[frame][1] // BITS_PER_SYMBOL[modulation] // 90
    return 90 * (slots + 1) + (36 * ((slots - 1) // 16) if pilots == "on" else 0)


def run_case(input, output, frames, frame, rate, modulation, pilots, goldcode, rolloff, taps):
    """Shape ``frames`` PLFRAMEs of gr-dtv's transmitter into ``output`` (complex64)."""
    for key, value, allowed in (("frame", frame, FRAMES), ("rate", rate, RATES),
                                ("modulation", modulation, MODULATIONS), ("pilots", pilots, ("on", "off")),
                                ("rolloff", rolloff, ROLLOFFS)):
        if value not in allowed:
            raise SystemExit(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    if int(taps) < 3 or int(taps) % 2 == 0:
        raise SystemExit(f"taps must be an odd number >= 3; got {taps!r}")
    fs, code_rate, mod = FRAMES[frame][0], RATES[rate], MODULATIONS[modulation]
    with open(input, "rb") as f:
        data = list(f.read())
    n = SPS * int(frames) * plframe_symbols(frame, modulation, pilots)
    tb = gr.top_block()
    tx = [
        blocks.vector_source_b(data, False),
        dtv.dvb_bbheader_bb(dtv.STANDARD_DVBS2, fs, code_rate, ROLLOFFS[rolloff], dtv.INPUTMODE_NORMAL,
                            dtv.INBAND_OFF, 168, 4000000),
        dtv.dvb_bbscrambler_bb(dtv.STANDARD_DVBS2, fs, code_rate),
        dtv.dvb_bch_bb(dtv.STANDARD_DVBS2, fs, code_rate),
        dtv.dvb_ldpc_bb(dtv.STANDARD_DVBS2, fs, code_rate, dtv.MOD_OTHER),
        dtv.dvbs2_interleaver_bb(fs, code_rate, mod),
        dtv.dvbs2_modulator_bc(fs, code_rate, mod, dtv.INTERPOLATION_OFF),
        dtv.dvbs2_physical_cc(fs, code_rate, mod, dtv.PILOTS_ON if pilots == "on" else dtv.PILOTS_OFF,
                              int(goldcode)),
        blocks.head(gr.sizeof_gr_complex, n),
    ]
    tail = blocks.vector_source_c([0j] * (int(taps) - 1), False)
    cat = blocks.stream_mux(gr.sizeof_gr_complex, [n, int(taps) - 1])
    rrc = filter.fir_filter_ccf(
        1, filter.firdes.root_raised_cosine(float(SPS), float(SPS), 1.0, float(rolloff), int(taps))
    )
    sink = blocks.file_sink(gr.sizeof_gr_complex, output, False)
    sink.set_unbuffered(False)
    tb.connect(*tx)
    tb.connect(tx[-1], (cat, 0))
    tb.connect(tail, (cat, 1))
    tb.connect(cat, rrc, sink)
    tb.run()
    tb.stop()
    sink.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", metavar="CASES_JSON", required=True,
                   help="run the cases listed in this JSON file")
    a = p.parse_args()
    with open(a.batch) as f:
        cases = json.load(f)
    for i, case in enumerate(cases):
        unknown = set(case) - set(DEFAULTS) - {"input", "output", "frames"}
        if unknown or not {"input", "output", "frames"} <= set(case):
            raise SystemExit(f"case {i}: needs input, output and frames; unknown keys: {sorted(unknown)}")
        run_case(**{**DEFAULTS, **case})


if __name__ == "__main__":
    main()
