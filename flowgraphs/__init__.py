"""Flowgraphs: the ZMQ stage runtime, the flowgraph files that wire modem stages together, and the CLI."""
