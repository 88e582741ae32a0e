"""``marslink keys``: create and list CurveZMQ key pairs and SDLS keys (never printing a secret).

Examples
--------
marslink keys create rx                  # CurveZMQ pair: rx.key (public), rx.key_secret (0600)
marslink keys create uplink --kind sdls  # AES-256 key for SDLS frame protection: uplink.sdls (0600)
marslink keys list --dir ./keys          # names, kinds, public keys, SDLS fingerprints
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    """Add ``keys create`` and ``keys list`` to the ``marslink`` sub-parsers."""
    keys = sub.add_parser("keys", help="create and list CurveZMQ key pairs and SDLS keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    dir_help = "key directory (default: $MARSLINK_KEY_DIR, else ~/.config/marslink/keys)"

    create = actions.add_parser("create", help="create a key pair (curve) or a symmetric key (sdls)")
    create.add_argument("name", help="key name: letters, digits, '_', '.', '-'")
    create.add_argument("--dir", default=None, help=dir_help)
    create.add_argument(
        "--kind", choices=("curve", "sdls"), default="curve",
        help="curve: CurveZMQ key pair for stage links (default); sdls: AES-256 frame-protection key",
    )  # fmt: skip
    create.add_argument("--force", action="store_true", help="overwrite an existing key of that name")
    create.set_defaults(func=cmd_create)

    listing = actions.add_parser("list", help="list the keys of a key directory (no secrets shown)")
    listing.add_argument("--dir", default=None, help=dir_help)
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    listing.set_defaults(func=cmd_list)


def cmd_create(args: argparse.Namespace) -> int:
    """Create one key; print where it went and its public part (never the secret)."""
    from flowgraphs import keys

    try:
        if args.kind == "curve":
            pair = keys.create_curve_keypair(args.name, args.dir, overwrite=args.force)
            d = keys.resolve_key_dir(args.dir)
            print(f"created CurveZMQ key pair {args.name!r}, public key {pair.public.decode()}")
            print(f"  {d / (args.name + keys.PUBLIC_SUFFIX)}  (public: give it to the peers)")
            print(f"  {d / (args.name + keys.SECRET_SUFFIX)}  (secret, mode 0600)")
        else:
            path = keys.create_sdls_key(args.name, args.dir, overwrite=args.force)
            fingerprint = keys.sdls_fingerprint(keys.load_sdls_key(path))
            print(f"created SDLS key {args.name!r}, fingerprint {fingerprint}")
            print(f"  {path}  (secret, mode 0600: copy it to the peer over a secure channel)")
    except (ValueError, OSError) as e:
        print(f"marslink keys create: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List the keys of a directory: name, kind, mode, public key or fingerprint, problems."""
    from flowgraphs import keys

    d = keys.resolve_key_dir(args.dir)
    found = keys.list_keys(d)
    if args.json:
        rows = [
            dict(name=k.name, kind=k.kind, path=str(k.path), public=k.public, fingerprint=k.fingerprint,
                 mode=k.mode, problem=k.problem)
            for k in found
        ]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0
    if not found:
        print(f"no keys in {d}")
        return 0
    print(f"keys in {d}")
    width = max(len(k.name) for k in found)
    for k in found:
        ident = k.public or (f"fingerprint {k.fingerprint}" if k.fingerprint else "")
        line = f"  {k.name.ljust(width)}  {k.kind:<12}  {k.mode}  {ident}"
        print(line.rstrip() + (f"  PROBLEM: {k.problem}" if k.problem else ""))
    return 0
