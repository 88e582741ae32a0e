"""GNU Radio gr-dtv DVB-S2 transmitter, as an independent reference for marslink's TX.

Run with the system Python that has GNU Radio 3.10 (``/usr/bin/python3``), not the
project's virtualenv. Reads MPEG-TS packets (188 bytes each, sync byte 0x47) from a file,
runs them through gr-dtv's chain (BBHEADER in normal input mode, BB scrambler, BCH, LDPC,
bit interleaver, modulator, PL framing) and writes the PLFRAME symbols as complex64.

    /usr/bin/python3 tests/gr/grdtv_dvbs2_tx.py --frame normal --rate 1/2 \\
        --modulation QPSK --pilots on --goldcode 0 --frames 2 in.ts out.cf32

gr-dtv's PL framer writes each symbol followed by a zero sample (2 samples per symbol);
callers take every other sample.
"""

import argparse

from gnuradio import blocks, dtv, gr

RATES = {
    "1/4": dtv.C1_4, "1/3": dtv.C1_3, "2/5": dtv.C2_5, "1/2": dtv.C1_2, "3/5": dtv.C3_5, "2/3": dtv.C2_3,
    "3/4": dtv.C3_4, "4/5": dtv.C4_5, "5/6": dtv.C5_6, "8/9": dtv.C8_9, "9/10": dtv.C9_10,
}
MODULATIONS = {"QPSK": dtv.MOD_QPSK, "8PSK": dtv.MOD_8PSK, "16APSK": dtv.MOD_16APSK, "32APSK": dtv.MOD_32APSK}
FRAMES = {"normal": dtv.FECFRAME_NORMAL, "short": dtv.FECFRAME_SHORT}
ROLLOFFS = {"0.35": dtv.RO_0_35, "0.25": dtv.RO_0_25, "0.20": dtv.RO_0_20}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", choices=FRAMES, default="normal")
    p.add_argument("--rate", choices=RATES, default="1/2")
    p.add_argument("--modulation", choices=MODULATIONS, default="QPSK")
    p.add_argument("--pilots", choices=("on", "off"), default="on")
    p.add_argument("--goldcode", type=int, default=0)
    p.add_argument("--rolloff", choices=ROLLOFFS, default="0.35")
    p.add_argument("--frames", type=int, default=1, help="PLFRAMEs to produce")
    p.add_argument("input", help="file of 188-byte TS packets")
    p.add_argument("output", help="complex64 output file")
    a = p.parse_args()

    fs, rate, mod = FRAMES[a.frame], RATES[a.rate], MODULATIONS[a.modulation]
    pilots = dtv.PILOTS_ON if a.pilots == "on" else dtv.PILOTS_OFF
    with open(a.input, "rb") as f:
        data = list(f.read())
    tb = gr.top_block()
    src = blocks.vector_source_b(data, False)
    bbheader = dtv.dvb_bbheader_bb(
        dtv.STANDARD_DVBS2, fs, rate, ROLLOFFS[a.rolloff], dtv.INPUTMODE_NORMAL, dtv.INBAND_OFF, 168, 4000000
    )
    chain = [
        src,
        bbheader,
        dtv.dvb_bbscrambler_bb(dtv.STANDARD_DVBS2, fs, rate),
        dtv.dvb_bch_bb(dtv.STANDARD_DVBS2, fs, rate),
        dtv.dvb_ldpc_bb(dtv.STANDARD_DVBS2, fs, rate, dtv.MOD_OTHER),
        dtv.dvbs2_interleaver_bb(fs, rate, mod),
        dtv.dvbs2_modulator_bc(fs, rate, mod, dtv.INTERPOLATION_OFF),
        dtv.dvbs2_physical_cc(fs, rate, mod, pilots, a.goldcode),
    ]
    head = blocks.head(gr.sizeof_gr_complex, 1 << 30)
    sink = blocks.file_sink(gr.sizeof_gr_complex, a.output, False)
    sink.set_unbuffered(False)
    tb.connect(*chain, head, sink)
    tb.run()
    tb.stop()


if __name__ == "__main__":
    main()
