"""GNU Radio gr-dtv DVB-S2 transmitter, as an independent reference for marslink's TX.

Run with the system Python that has GNU Radio 3.10 (``/usr/bin/python3``), not the
project's virtualenv. Reads MPEG-TS packets (188 bytes each, sync byte 0x47) from a file,
runs them through gr-dtv's chain (BBHEADER in normal input mode, BB scrambler, BCH, LDPC,
bit interleaver, modulator, PL framing) and writes the PLFRAME symbols as complex64.

    /usr/bin/python3 tests/gr/grdtv_dvbs2_tx.py --frame normal --rate 1/2 \\
        --modulation QPSK --pilots on --goldcode 0 --frames 2 in.ts out.cf32

gr-dtv's PL framer writes each symbol followed by a zero sample (2 samples per symbol);
callers take every other sample. gr-dtv emits only complete PLFRAMEs, as many as the input
fills (one BBFRAME data field, K_bch - 80 bits, per frame); ``--frames N`` stops after N.

Batch mode runs many cases in one process (saving GNU Radio's start-up per case):

    /usr/bin/python3 tests/gr/grdtv_dvbs2_tx.py --batch cases.json

``cases.json`` holds a list of objects with the keys ``input`` and ``output`` and optionally
``frame``, ``rate``, ``modulation``, ``pilots`` ("on"/"off"), ``goldcode``, ``rolloff`` and
``frames``, with the values and defaults of the command-line options.
"""

import argparse
import json

from gnuradio import blocks, dtv, gr

RATES = {
    "1/4": dtv.C1_4, "1/3": dtv.C1_3, "2/5": dtv.C2_5, "1/2": dtv.C1_2, "3/5": dtv.C3_5, "2/3": dtv.C2_3,
    "3/4": dtv.C3_4, "4/5": dtv.C4_5, "5/6": dtv.C5_6, "8/9": dtv.C8_9, "9/10": dtv.C9_10,
}
MODULATIONS = {"QPSK": dtv.MOD_QPSK, "8PSK": dtv.MOD_8PSK, "16APSK": dtv.MOD_16APSK, "32APSK": dtv.MOD_32APSK}
BITS_PER_SYMBOL = {"QPSK": 2, "8PSK": 3, "16APSK": 4, "32APSK": 5}
FRAMES = {"normal": dtv.FECFRAME_NORMAL, "short": dtv.FECFRAME_SHORT}
N_LDPC = {"normal": 64800, "short": 16200}
ROLLOFFS = {"0.35": dtv.RO_0_35, "0.25": dtv.RO_0_25, "0.20": dtv.RO_0_20}
DEFAULTS = {
    "frame": "normal", "rate": "1/2", "modulation": "QPSK", "pilots": "on", "goldcode": 0, "rolloff": "0.35",
    "frames": 0,
}
CHOICES = {
    "frame": FRAMES, "rate": RATES, "modulation": MODULATIONS, "pilots": ("on", "off"), "rolloff": ROLLOFFS,
}


def plframe_symbols(frame, modulation, pilots):
    """PLFRAME length in symbols (EN 302 307-1 §5.5): PLHEADER, slots, pilot blocks."""
    slots = N_LDPC[frame] // BITS_PER_SYMBOL[modulation] // 90
    blocks_ = (slots - 1) // 16 if pilots == "on" else 0
    return 90 * (slots + 1) + 36 * blocks_


def run_case(frame, rate, modulation, pilots, goldcode, rolloff, frames, input, output):
    """Run one input file through gr-dtv's DVB-S2 transmitter; write complex64 samples."""
    for key, value in (("frame", frame), ("rate", rate), ("modulation", modulation), ("pilots", pilots),
                       ("rolloff", rolloff)):
        if value not in CHOICES[key]:
            raise SystemExit(f"{key} must be one of {', '.join(CHOICES[key])}; got {value!r}")
    fs, code_rate, mod = FRAMES[frame], RATES[rate], MODULATIONS[modulation]
    pilot_mode = dtv.PILOTS_ON if pilots == "on" else dtv.PILOTS_OFF
    with open(input, "rb") as f:
        data = list(f.read())
    tb = gr.top_block()
    src = blocks.vector_source_b(data, False)
    bbheader = dtv.dvb_bbheader_bb(
        dtv.STANDARD_DVBS2, fs, code_rate, ROLLOFFS[rolloff], dtv.INPUTMODE_NORMAL, dtv.INBAND_OFF, 168,
        4000000,
    )
    chain = [
        src,
        bbheader,
        dtv.dvb_bbscrambler_bb(dtv.STANDARD_DVBS2, fs, code_rate),
        dtv.dvb_bch_bb(dtv.STANDARD_DVBS2, fs, code_rate),
        dtv.dvb_ldpc_bb(dtv.STANDARD_DVBS2, fs, code_rate, dtv.MOD_OTHER),
        dtv.dvbs2_interleaver_bb(fs, code_rate, mod),
        dtv.dvbs2_modulator_bc(fs, code_rate, mod, dtv.INTERPOLATION_OFF),
        dtv.dvbs2_physical_cc(fs, code_rate, mod, pilot_mode, int(goldcode)),
    ]
    limit = 2 * int(frames) * plframe_symbols(frame, modulation, pilots) if int(frames) > 0 else 1 << 30
    head = blocks.head(gr.sizeof_gr_complex, limit)
    sink = blocks.file_sink(gr.sizeof_gr_complex, output, False)
    sink.set_unbuffered(False)
    tb.connect(*chain, head, sink)
    tb.run()
    tb.stop()
    sink.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", choices=FRAMES, default=DEFAULTS["frame"])
    p.add_argument("--rate", choices=RATES, default=DEFAULTS["rate"])
    p.add_argument("--modulation", choices=MODULATIONS, default=DEFAULTS["modulation"])
    p.add_argument("--pilots", choices=("on", "off"), default=DEFAULTS["pilots"])
    p.add_argument("--goldcode", type=int, default=DEFAULTS["goldcode"])
    p.add_argument("--rolloff", choices=ROLLOFFS, default=DEFAULTS["rolloff"])
    p.add_argument("--frames", type=int, default=DEFAULTS["frames"],
                   help="stop after this many PLFRAMEs (default 0: as many as the input fills)")
    p.add_argument("--batch", metavar="CASES_JSON", help="run the cases listed in this JSON file")
    p.add_argument("input", nargs="?", help="file of 188-byte TS packets")
    p.add_argument("output", nargs="?", help="complex64 output file")
    a = p.parse_args()

    if a.batch:
        if a.input or a.output:
            p.error("--batch takes no input/output arguments (they are in the JSON file)")
        with open(a.batch) as f:
            cases = json.load(f)
        for i, case in enumerate(cases):
            unknown = set(case) - set(DEFAULTS) - {"input", "output"}
            if unknown or not {"input", "output"} <= set(case):
                raise SystemExit(f"case {i}: needs input and output; unknown keys: {sorted(unknown)}")
            run_case(**{**DEFAULTS, **case})
        return
    if not (a.input and a.output):
        p.error("input and output files are required (or --batch)")
    run_case(a.frame, a.rate, a.modulation, a.pilots, a.goldcode, a.rolloff, a.frames, a.input, a.output)


if __name__ == "__main__":
    main()
