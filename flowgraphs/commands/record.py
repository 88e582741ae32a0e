"""``marslink record OUT``: record a PlutoSDR's RX stream to SigMF, or import a raw IQ file.

Examples
--------
marslink record pass1 --uri ip:192.168.2.1 --rate 2e6 --freq 2.4e9 --seconds 10
marslink record pass1 --uri ip:127.0.0.1:40000 --datatype ci16_le --gain 40      # a virtual Pluto
marslink record imported --import rx.cs16 --rate 2e6 --freq 435e6                # Pluto native int16
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    """Add the ``record`` subcommand."""
    p = sub.add_parser(
        "record",
        help="record a PlutoSDR's RX stream (or a raw .cf32/.cs16 file) as SigMF",
        description="Record complex baseband from a PlutoSDR (pyadi-iio URI; a virtual Pluto works too) "
        "into a SigMF recording, or convert a headerless IQ file with --import. Stream gaps (RX "
        "overflows) are annotated in the recording and counted.",
    )
    p.add_argument("out", help="recording stem (OUT.sigmf-meta and OUT.sigmf-data)")
    p.add_argument("--import", dest="raw", metavar="FILE", help="convert FILE (.cf32/.cfile/.cs16) instead")
    p.add_argument("--full-scale", type=float, help="--import .cs16: value of unit amplitude (default 2048)")
    p.add_argument("--uri", help="Pluto URI: ip:HOST[:PORT] or usb:...; default: auto-discovery")
    p.add_argument("--rate", type=float, default=2e6, help="sample rate in samples/s (default 2e6)")
    p.add_argument("--freq", type=float, help="center frequency in Hz (default: the --link bench plan)")
    p.add_argument("--link", choices=["ka", "uhf"], default="ka", help="bench plan: ka 2.4 GHz, uhf 435 MHz")
    p.add_argument("--seconds", type=float, default=1.0, help="recording length (default 1 s)")
    p.add_argument("--gain", type=float, help="manual RX gain in dB (default: slow_attack AGC)")
    p.add_argument("--datatype", choices=["cf32_le", "ci16_le"], default="ci16_le", help="sample format")
    p.add_argument("--buffer", type=int, default=65536, help="samples per RX buffer")
    p.add_argument("--description", help="core:description text")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recording")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record or import; returns the exit status."""
    import warnings

    from hw.captures import CaptureError, CaptureWriter, import_raw
    from hw.radio import StreamGapWarning, bench_frequency

    try:
        freq = args.freq if args.freq is not None else bench_frequency(args.link)
        if args.raw:
            info = import_raw(
                args.raw,
                args.out,
                args.rate,
                freq,
                full_scale=args.full_scale,
                description=args.description,
                overwrite=args.overwrite,
            )
            print(f"imported {info.sample_count} samples into {info.meta_path} ({info.datatype})")
            return 0
        from hw.pluto import Pluto

        if not args.seconds > 0:
            raise ValueError(f"--seconds must be > 0; got {args.seconds}")
        total = int(round(args.seconds * args.rate))
        kwargs = {"rx_gain_mode": "manual", "rx_gain_db": args.gain} if args.gain is not None else {}
        with Pluto(
            args.uri,
            center_freq_hz=freq,
            sample_rate_hz=args.rate,
            buffer_size=args.buffer,
            on_gap="count",
            **kwargs,
        ) as radio:
            hw_name = f"ADALM-PLUTO ({radio.uri or 'auto'}) via pyadi-iio"
            with CaptureWriter(
                args.out,
                radio.sample_rate_hz,
                radio.rx_lo_hz,
                datatype=args.datatype,
                hardware=hw_name,
                description=args.description,
                overwrite=args.overwrite,
            ) as w:
                got = 0
                seen = 0
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", StreamGapWarning)
                    while got < total:
                        x = radio.rx(min(args.buffer, total - got))
                        w.write(x)
                        for gap in radio.stats.gaps[seen:]:
                            w.annotate(
                                got,
                                0,
                                label="gap",
                                comment=f"RX {gap.kind}: samples lost before here",
                                gap=gap.kind,
                            )
                        seen = len(radio.stats.gaps)
                        got += x.size
            stats = radio.stats
    except (CaptureError, ValueError, TypeError, ConnectionError, FileExistsError, OSError) as e:
        print(f"marslink record: {e}", file=sys.stderr)
        return 2
    print(
        f"recorded {got} samples ({got / args.rate:.3f} s) to {w.meta_path}; "
        f"RX overflows: {stats.rx_overflows}, ci16 clipped: {w.clipped}"
    )
    return 0 if stats.rx_overflows == 0 else 1
