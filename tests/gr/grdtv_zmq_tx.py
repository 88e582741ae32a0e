"""GNU Radio 3.10 DVB-S2 transmitter (gr-dtv) whose shaped IQ leaves through a gr-zeromq PUSH sink.

Run with the system Python that has GNU Radio (``/usr/bin/python3``). Reads MPEG-TS packets from a
file and sends them through gr-dtv's chain (BBHEADER, BB scrambler, BCH, LDPC, interleaver,
modulator, PL framing: 2 samples per symbol, each symbol followed by a zero) and an RRC filter
(GNU Radio's firdes.root_raised_cosine, roll-off 0.35, gain 2 to make up for the zeros), to a
``zeromq.push_sink`` that binds ``--address``. marslink's rx stage connects to it.

    /usr/bin/python3 tests/gr/grdtv_zmq_tx.py --address tcp://127.0.0.1:5555 in.ts

``--pass-tags`` sends gr-zeromq's tag header (stream offset) with every message. After the
input is sent the blocks stay alive ``--linger`` seconds, so that the peer reads everything
queued, then the script exits.
"""

import argparse
import time

from gnuradio import blocks, dtv, filter, gr, zeromq
from gnuradio.filter import firdes

RATES = {"1/4": dtv.C1_4, "1/2": dtv.C1_2, "3/5": dtv.C3_5, "2/3": dtv.C2_3, "3/4": dtv.C3_4}
MODULATIONS = {"QPSK": dtv.MOD_QPSK, "8PSK": dtv.MOD_8PSK, "16APSK": dtv.MOD_16APSK}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", help="file of 188-byte TS packets")
    p.add_argument("--address", required=True, help="ZeroMQ endpoint the PUSH sink binds")
    p.add_argument("--rate", choices=RATES, default="1/2")
    p.add_argument("--modulation", choices=MODULATIONS, default="QPSK")
    p.add_argument("--pass-tags", action="store_true", help="send gr-zeromq's tag header")
    p.add_argument("--linger", type=float, default=5.0, help="seconds to keep the sink alive at the end")
    a = p.parse_args()
    with open(a.input, "rb") as f:
        data = list(f.read())
    fs, rate, mod = dtv.FECFRAME_NORMAL, RATES[a.rate], MODULATIONS[a.modulation]
    tb = gr.top_block()
    src = blocks.vector_source_b(data, False)
    chain = [
        src,
        dtv.dvb_bbheader_bb(
            dtv.STANDARD_DVBS2, fs, rate, dtv.RO_0_35, dtv.INPUTMODE_NORMAL, dtv.INBAND_OFF, 168, 4000000
        ),
        dtv.dvb_bbscrambler_bb(dtv.STANDARD_DVBS2, fs, rate),
        dtv.dvb_bch_bb(dtv.STANDARD_DVBS2, fs, rate),
        dtv.dvb_ldpc_bb(dtv.STANDARD_DVBS2, fs, rate, dtv.MOD_OTHER),
        dtv.dvbs2_interleaver_bb(fs, rate, mod),
        dtv.dvbs2_modulator_bc(fs, rate, mod, dtv.INTERPOLATION_OFF),
        dtv.dvbs2_physical_cc(fs, rate, mod, dtv.PILOTS_ON, 0),
        filter.fft_filter_ccf(1, firdes.root_raised_cosine(2.0, 2.0, 1.0, 0.35, 33)),
        zeromq.push_sink(gr.sizeof_gr_complex, 1, a.address, 100, a.pass_tags, -1),
    ]
    tb.connect(*chain)
    tb.start()
    tb.wait()
    time.sleep(a.linger)
    tb.stop()


if __name__ == "__main__":
    main()
