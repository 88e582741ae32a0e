"""``marslink replay FILE``: decode a DVB-S2 SigMF recording and print a frame table.

Examples
--------
marslink replay captures/grdtv_8psk35_short                  # link settings from the metadata
marslink replay rec.sigmf-meta --frame short --no-pilots --sps 4
marslink replay captures/acm_storm_pass --realtime --out payload.bin
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    """Add the ``replay`` subcommand."""
    p = sub.add_parser(
        "replay",
        help="decode a DVB-S2 SigMF recording and print a frame table",
        description="Replay a SigMF recording into the DVB-S2 receiver (raw-IQ path) and print one line per "
        "frame. Link settings come from the recording's marslink:dvbs2 field; options override them. "
        "Exit status 0: every frame delivered; 1: frames lost or none found; 2: unusable recording.",
    )
    p.add_argument("file", help="recording: stem, .sigmf-meta or .sigmf-data")
    p.add_argument("--frame", choices=["normal", "short"], help="FECFRAME size")
    p.add_argument("--pilots", dest="pilots", action="store_true", default=None, help="pilot blocks on")
    p.add_argument("--no-pilots", dest="pilots", action="store_false", help="pilot blocks off")
    p.add_argument("--sps", type=int, help="samples per symbol")
    p.add_argument("--rolloff", type=float, choices=[0.35, 0.25, 0.20], help="RRC roll-off")
    p.add_argument("--gold-code", type=int, help="PL scrambling code number")
    p.add_argument("--stream", choices=["gs", "ts"], help="generic stream or MPEG-TS")
    p.add_argument("--realtime", action="store_true", help="pace the replay at the recording's sample rate")
    p.add_argument("--speed", type=float, default=1.0, help="with --realtime: times real time (default 1)")
    p.add_argument(
        "--chunk", type=int, default=None,
        help="samples per receiver call (default: 65536 when paced, 262144 as fast as possible)",
    )
    p.add_argument("--out", metavar="FILE", help="write the decoded bytes here")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-512 check of the data file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decode, print the frame table; returns the exit status."""
    from hw.capture_decode import frame_table, replay_decode
    from hw.captures import CaptureError, open_capture

    try:
        cap = open_capture(args.file, verify=not args.no_verify)
        info = cap.info
        freq = "?" if info.center_freq_hz is None else f"{info.center_freq_hz / 1e6:g} MHz"
        print(
            f"{info.meta_path}: {info.sample_count} samples {info.datatype} at "
            f"{info.sample_rate_hz / 1e6:g} MS/s, {freq}, {info.duration_s:.3f} s; "
            f"hardware: {info.hardware or '?'}"
        )
        result = replay_decode(
            cap,
            chunk=args.chunk,
            realtime=args.realtime,
            speed=args.speed,
            frame=args.frame,
            pilots=args.pilots,
            sps=args.sps,
            rolloff=args.rolloff,
            gold_code=args.gold_code,
            stream=args.stream,
        )
    except (CaptureError, ValueError) as e:
        print(f"marslink replay: {e}", file=sys.stderr)
        return 2
    print(frame_table(result))
    if args.out:
        with open(args.out, "wb") as f:
            f.write(result.data)
        print(f"wrote {len(result.data)} bytes to {args.out}")
    if not result.reports:
        print("no DVB-S2 frame found: check the link settings (--frame, --pilots, --sps, --rolloff)")
        return 1
    return 0 if result.frames_lost == 0 else 1
