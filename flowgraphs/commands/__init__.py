"""Subcommands of ``marslink``, one module each.

Every module here defines ``register(sub)``, which adds its subparser(s) to the
``argparse`` sub-parser action ``sub`` and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit status). ``flowgraphs.cli`` discovers the
modules by name, so adding a command means adding a file, nothing else.
"""
