"""The flowgraph as separate processes: kill -9 the receiver, then the channel, in the middle of a run.

The runner must restart each, and the sink must still receive every byte the source offered, in
order and verified: what died with the killed processes (samples in their queues, frames they were
decoding) is sent again from the transmitter's queue.
"""

import copy
import os
import signal
import subprocess
import sys
import time

from test_flowgraph import LOOPBACK

from flowgraphs.graph import Runner, check_graph

TOTAL = 1_500_000


def test_kill_rx_then_channel_loses_nothing():
    t = copy.deepcopy(LOOPBACK)
    t["stages"]["src"]["total_bytes"] = TOTAL
    t["stages"]["acm"]["feedback_delay_s"] = 0.05
    t["run"]["wall_limit_s"] = 170.0
    g = check_graph(t, "kill-test")
    kills = []
    logs = []

    def hook(runner):
        rx = runner.records["rx"]
        sink = (runner.records["sink"].stats or {}).get("counters", {})
        delivered = sink.get("delivered_bytes", 0)
        if not kills and delivered > TOTAL // 5 and runner.pid("rx"):
            os.kill(runner.pid("rx"), signal.SIGKILL)
            kills.append(("rx", delivered, time.monotonic()))
        elif len(kills) == 1 and rx.epoch == 1 and delivered > TOTAL // 2 and runner.pid("ch"):
            os.kill(runner.pid("ch"), signal.SIGKILL)
            kills.append(("ch", delivered, time.monotonic()))

    r = Runner(g, mode="process", on_log=lambda s, lvl, text: logs.append((s, lvl, text)))
    r.kill_hook = hook
    res = r.run()
    assert [k[0] for k in kills] == ["rx", "ch"], (kills, logs[-5:])
    assert res.reason == "done", logs[-5:]
    assert res.stages["rx"].restarts == 1 and res.stages["ch"].restarts == 1
    assert res.stages["rx"].exit_codes[0] == -signal.SIGKILL
    rep = res.summary("mon")["report"]
    b = rep["bytes"]
    assert b["offered"] == TOTAL and b["delivered"] == TOTAL and b["lost"] == 0, b
    assert b["corrupt_frames"] == 0 and b["verified"]
    assert res.summary("sink")["offset_errors"] == 0
    # the kills did cost frames: they came again from the queue
    assert res.summary("tx")["frames_retransmitted"] > 0
    assert any("restarting it" in text for s, _, text in logs if s == "rx")


def _children_of(pid: int) -> list[int]:
    """Processes started by runner ``pid`` (they carry MARSLINK_PARENT_PID in their environment)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"MARSLINK_PARENT_PID={pid}".encode() in env:
            found.append(int(d))
    return found


def test_sigint_stops_every_stage_and_prints_the_summary(tmp_path):
    """Ctrl-C on ``marslink run``: every stage stops, the summary still comes, exit status 130."""
    cmd = [sys.executable, "-m", "flowgraphs.cli", "run", "awgn_loopback", "--no-progress"]
    cmd += ["--out", str(tmp_path), "--set", "link.duration_s=60"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_children_of(p.pid)) < 7:
        time.sleep(0.2)
    assert len(_children_of(p.pid)) == 7  # one process per stage
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err[-2000:]
    assert "stopped: interrupted" in err
    assert "bytes lost" in out and "bytes lost                         0" in out
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "acm_timeline.png").is_file()
    assert _children_of(p.pid) == []
