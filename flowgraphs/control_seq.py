"""Anti-replay for control messages (ACM commands, stage control): per-sender sequence numbers.

Every control message carries ``(sender, epoch, seq)``: ``sender`` names the stage (or, on a
CurveZMQ link, the authenticated client key from the frame's ``User-Id``), ``epoch`` is chosen
by the sender when it starts and grows with every start (e.g. ``time.time_ns()`` at start, or a
restart counter kept by the runner), and ``seq`` counts the sender's messages within the epoch.
:class:`ControlSequenceChecker` accepts a message only if ``(epoch, seq)`` is strictly greater
than the last accepted pair of that sender: control is applied in order, each message once.
A repeated or older message is rejected and counted (:class:`ControlRejected`); a jump
forward is accepted and the skipped messages counted as missed (control messages are
commands, not data: a late one must not be applied after a newer one).

A restarted sender must use a larger epoch; if it cannot, the runner that restarted it calls
:meth:`ControlSequenceChecker.forget` for it. Without CurveZMQ (or another authenticated
transport) anyone who can reach the socket can forge a higher sequence number: this check
stops replays and reordering, authentication stops forgeries.

Typical use in a stage's control path::

    checker = ControlSequenceChecker()
    ...
    try:
        checker.check(msg.sender, msg.seq, msg.epoch)
    except ControlRejected as e:
        metrics["control_rejected"] += 1     # e.reason: "replay", "stale_epoch", "too_many_senders"
        continue
    apply(msg)
"""

from __future__ import annotations

MAX_SEQ = (1 << 64) - 1  #: sequence numbers and epochs are unsigned 64-bit

#: Rejection reasons, each with its counter in ``ControlSequenceChecker.counters``.
REASONS = ("replay", "stale_epoch", "too_many_senders", "invalid")


class ControlRejected(ValueError):
    """A control message refused by :class:`ControlSequenceChecker`; never apply it.

    Attributes
    ----------
    reason : str
        "replay" (sequence number not above the last accepted one in this epoch), "stale_epoch"
        (epoch below the sender's current one), "too_many_senders" (sender table full) or
        "invalid" (sender, epoch or seq not of the allowed type or range).
    sender : object
    """

    def __init__(self, reason: str, detail: str, sender=None):
        super().__init__(f"control message rejected ({reason}): {detail}")
        self.reason = reason
        self.sender = sender


class ControlSequenceChecker:
    """Accept each sender's control messages once and in order; count the rest.

    Parameters
    ----------
    max_senders : int
        Distinct senders remembered (>= 1); messages from further senders are refused, so a
        flood of invented sender names cannot grow memory without bound.

    Attributes
    ----------
    counters : dict of str to int
        ``accepted``, ``missed`` (messages skipped by forward jumps, i.e. presumably lost) and
        one counter per rejection reason (:data:`REASONS`).
    """

    def __init__(self, max_senders: int = 1024):
        if isinstance(max_senders, bool) or not isinstance(max_senders, int) or max_senders < 1:
            raise ValueError(f"max_senders must be an int >= 1; got {max_senders!r}")
        self.max_senders = max_senders
        self._last: dict[object, tuple[int, int]] = {}
        self.counters = dict.fromkeys(("accepted", "missed", *REASONS), 0)

    def _reject(self, reason: str, detail: str, sender) -> None:
        self.counters[reason] += 1
        raise ControlRejected(reason, detail, sender)

    def check(self, sender, seq: int, epoch: int = 0) -> int:
        """Accept message ``seq`` of ``sender`` in ``epoch`` or raise :class:`ControlRejected`.

        Parameters
        ----------
        sender : str or bytes
            Who sent it (stage name, or the Z85 key of an authenticated CurveZMQ peer).
        seq : int
            The sender's message counter, 0 .. 2^64 - 1.
        epoch : int
            The sender's start epoch, 0 .. 2^64 - 1 (see the module notes).

        Returns
        -------
        int
            Messages of this sender skipped since the last accepted one in the same epoch (0 when
            in order, and for the first message of a sender or of a new epoch).
        """
        if not isinstance(sender, str | bytes):
            self._reject("invalid", f"sender must be str or bytes; got {type(sender).__name__}", None)
        for name, v in (("seq", seq), ("epoch", epoch)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SEQ:
                self._reject("invalid", f"{name} must be an int in 0..2^64-1; got {v!r}", sender)
        last = self._last.get(sender)
        if last is None:
            if len(self._last) >= self.max_senders:
                self._reject(
                    "too_many_senders", f"{len(self._last)} senders known (max_senders); {sender!r} is new",
                    sender,
                )  # fmt: skip
            missed = 0
        else:
            last_epoch, last_seq = last
            if epoch < last_epoch:
                self._reject("stale_epoch", f"{sender!r}: epoch {epoch} < current epoch {last_epoch}", sender)
            if epoch == last_epoch:
                if seq <= last_seq:
                    self._reject(
                        "replay", f"{sender!r}: seq {seq} <= last accepted {last_seq} (epoch {epoch})", sender
                    )
                missed = seq - last_seq - 1
            else:
                missed = 0
        self._last[sender] = (epoch, seq)
        self.counters["accepted"] += 1
        self.counters["missed"] += missed
        return missed

    def last(self, sender) -> tuple[int, int] | None:
        """``(epoch, seq)`` last accepted from ``sender``, or None."""
        return self._last.get(sender)

    def forget(self, sender) -> None:
        """Drop what is known of ``sender`` (the runner restarted it without a new epoch)."""
        self._last.pop(sender, None)

    @property
    def rejected(self) -> int:
        """Messages refused, all reasons together."""
        return sum(self.counters[r] for r in REASONS)


__all__ = ["MAX_SEQ", "REASONS", "ControlRejected", "ControlSequenceChecker"]
