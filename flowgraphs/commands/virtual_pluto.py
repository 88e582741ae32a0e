"""``marslink virtual-pluto``: serve a virtual ADALM-PLUTO on a local TCP port.

Examples
--------
marslink virtual-pluto                          # ip:127.0.0.1 (port 30431), real-time pacing
marslink virtual-pluto --port 40000 --fast      # as fast as the receiver reads
marslink virtual-pluto --esn0 8 --cfo 2500 --ppm 10 --phase-noise pluto
marslink virtual-pluto --scenario storm_pass --time-scale 60
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    """Add the ``virtual-pluto`` subcommand."""
    p = sub.add_parser(
        "virtual-pluto",
        help="serve a virtual PlutoSDR (libiio network protocol) that pyadi-iio can use",
        description="Serve a virtual ADALM-PLUTO: libiio's iiod protocol on HOST:PORT, the PlutoSDR's IIO "
        "context, TX looped into RX through a channel model. Connect with adi.Pluto('ip:HOST:PORT').",
    )
    p.add_argument("--host", default="127.0.0.1", help="listening address (default %(default)s)")
    p.add_argument(
        "--port", type=int, default=30431, help="TCP port, 0 for any free one (default %(default)s)"
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        default=True,
        help="pace TX and RX at the sample rate, with overflow/underflow (default)",
    )
    pace.add_argument(
        "--fast",
        dest="realtime",
        action="store_false",
        help="run as fast as the receiver reads (TX bursts wait until received)",
    )
    p.add_argument(
        "--path-loss",
        type=float,
        default=40.0,
        metavar="DB",
        help="loss between TX and RX ports in dB (default %(default)s)",
    )
    ch = p.add_argument_group("channel model (default: none)")
    ch.add_argument("--esn0", type=float, metavar="DB", help="AWGN at this Es/N0 (dB)")
    ch.add_argument("--sps", type=float, default=2.0, help="samples per symbol of the TX signal (default 2)")
    ch.add_argument(
        "--signal-power",
        type=float,
        metavar="P",
        help="TX mean power per sample at DAC full scale (default: measured)",
    )
    ch.add_argument("--cfo", type=float, default=0.0, metavar="HZ", help="carrier frequency offset (Hz)")
    ch.add_argument("--doppler-rate", type=float, default=0.0, metavar="HZ_S", help="CFO drift (Hz/s)")
    ch.add_argument("--ppm", type=float, default=0.0, help="receiver sample-clock offset (ppm)")
    ch.add_argument("--phase-noise", choices=["tcxo", "ocxo", "pluto"], help="phase-noise preset")
    ch.add_argument("--scenario", metavar="NAME", help="Mars pass scenario (replaces the options above)")
    ch.add_argument("--link", default="ka", help="scenario link (default %(default)s)")
    ch.add_argument("--symbol-rate", type=float, metavar="HZ", help="scenario symbol rate (default rate/sps)")
    ch.add_argument("--time-scale", type=float, default=1.0, help="scenario seconds per stream second")
    ch.add_argument("--seed", type=int, help="noise seed (printed when chosen at random)")
    p.add_argument(
        "--duration",
        type=float,
        default=0.0,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--stats-every",
        type=float,
        default=10.0,
        metavar="S",
        help="print sample counts every S seconds, 0 for never (default %(default)s)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every protocol error")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or ``--duration``); returns the exit status."""
    import logging
    import signal
    import threading

    import numpy as np

    from hw.virtual_channel import ChannelSpec
    from hw.virtual_pluto import VirtualPluto

    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    seed = args.seed
    if seed is None and (args.esn0 is not None or args.phase_noise or args.scenario):
        seed = int(np.random.SeedSequence().entropy % (1 << 31))
    try:
        spec = ChannelSpec(
            esn0_db=args.esn0,
            samples_per_symbol=args.sps,
            signal_power=args.signal_power,
            cfo_hz=args.cfo,
            doppler_rate_hz_per_s=args.doppler_rate,
            clock_ppm=args.ppm,
            phase_noise=args.phase_noise,
            scenario=args.scenario,
            link=args.link,
            symbol_rate_hz=args.symbol_rate,
            time_scale=args.time_scale,
            seed=seed,
        )
        vp = VirtualPluto(
            port=args.port,
            host=args.host,
            channel=spec.factory(),
            realtime=args.realtime,
            path_loss_db=args.path_loss,
        )
        vp.start()
    except (ValueError, OSError, ImportError) as e:
        print(f"marslink virtual-pluto: {e}", file=sys.stderr)
        return 2
    pace = "real-time" if args.realtime else "as fast as RX reads"
    seeded = f", seed {seed}" if seed is not None else ""
    print(
        f"virtual PlutoSDR on {vp.uri} ({pace}; channel: {spec.describe()}{seeded}); Ctrl-C stops", flush=True
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    every = args.stats_every if args.stats_every > 0 else None
    waited = 0.0
    try:
        while not done.is_set():
            step = every or 1.0
            if args.duration:
                step = min(step, args.duration - waited)
                if step <= 0:
                    break
            done.wait(step)
            waited += step
            if every:
                print(_stats_line(vp), flush=True)
    finally:
        vp.stop()
    print(_stats_line(vp), flush=True)
    return 0


def _stats_line(vp) -> str:
    s = vp.stats
    return (
        f"tx {s.tx_samples} rx {s.rx_samples} samples; underflow {s.tx_underflow_samples}, "
        f"overflow {s.rx_overflow_samples}, unheard {s.tx_unheard_samples}, ADC clipped {s.adc_clipped}; "
        f"connections {vp.server.connections}"
    )
