"""Flowgraphs: the ZeroMQ stage runtime, the flowgraph files that wire modem stages together, and the CLI.

How the pieces fit (``marslink run`` with no argument runs ``graphs/storm_pass.toml``)::

    source --bytes--> tx --IQ--> channel --IQ--> rx --user frames--> sink
                      ^                            |                   |
                      |  acm.cmd, acm.ack          | rx.frames         | sink.ack
                      +------------- acm <---------+-------------------+      (bus: PUB/SUB)

* :mod:`flowgraphs.stage`: the :class:`~flowgraphs.stage.Stage` base class (sockets, loop,
  backpressure, accounting, shutdown); :mod:`flowgraphs.stages`: one module per stage type.
* :mod:`flowgraphs.wire`: IQ messages (gr-zeromq compatible, with or without its tag header) and
  control/telemetry/data messages (magic, version, sender, epoch, sequence number, CRC-32).
* :mod:`flowgraphs.graph`: flowgraph TOML files, their validation, the runner (a process or a
  thread per stage, supervision and restarts, clean stop, summaries).
* :mod:`flowgraphs.userframes`: how user bytes travel in the DVB-S2 generic stream (sync marker,
  sequence number, stream offset, CRC-32).
* :mod:`flowgraphs.timebase`: stream samples <-> scenario seconds.
* :mod:`flowgraphs.report`: the run's summary table and plots.

Delivery without loss (selective-repeat ARQ)
    The transmitter cuts user bytes into numbered user frames and keeps each one in its
    :class:`modem.acm.TransmitQueue` until the sink has acknowledged it. The sink checks every
    payload byte against the source, delivers strictly in order and acknowledges cumulatively
    (every frame below ``cum``) plus up to 32 selective ranges of frames held beyond a hole. The
    acknowledgments return over the acm stage, the return link, with the same feedback delay as
    the MODCOD commands. A frame is sent again when a frame sent after it has been acknowledged
    (the DVB-S2 stream keeps the order of transmission, so it was lost) or when no
    acknowledgment came within the retransmission timeout (the tail of a burst, or everything
    in flight when the receiver or the channel process died). While the channel is below the
    lowest MODCOD the transmitter sends only dummy PLFRAMEs and the data waits in the queue (its
    capacity is the transmitter's ``queue_bytes``; the source is held back when it is full). The
    run's report accounts for every byte offered: delivered, still in the transmit queue, held at
    the sink behind a hole, or lost (which must be 0).
Time
    Every IQ message carries its stream offset (the gr-zeromq tag header); feedback messages say
    from which transmitter sample they may apply (``apply_at``: the receiver's offset plus the
    feedback delay), so the loop delay is set by the flowgraph (in scenario seconds), not by how
    fast the processes run; the transmitter runs at most one more delay ahead of the feedback.
"""
