"""video_predictor.ros.diagnostics: the counters add up in every snapshot, and the health level follows
failures and recoveries."""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus

from video_predictor.ros.diagnostics import NodeStats, diagnostic_status, health
from video_predictor.ros.node import LatestSlot


def test_every_snapshot_adds_up_while_the_node_threads_count():
    """The subscription thread and the inference worker count as the node does, through
    the node's one-slot mailbox: received always equals the sum of the outcomes and
    nothing is ever in flight a negative number of times."""
    stats, slot = NodeStats(), LatestSlot()
    done = threading.Event()
    snapshots = []

    def subscription() -> None:
        for i in range(5_000):
            if i % 7 == 0:
                stats.add(error="rejected input: bad", received=1, rejected=1)
            elif i % 3 == 0:
                stats.add(received=1, skipped=1)
            else:
                stats.add(received=1, in_flight=1)
                if slot.put(i) is not None:
                    stats.add(dropped=1, in_flight=-1)
            time.sleep(0)  # lets the other threads in, as a callback waiting on DDS does
        done.set()
        if slot.put(-1) is not None:  # tells the worker to stop; a job it replaces is dropped
            stats.add(dropped=1, in_flight=-1)

    def worker() -> None:
        taken = 0
        while slot.take() != -1:
            taken += 1
            if taken % 2:
                stats.prediction_done(0.01)
            else:
                stats.prediction_failed("inference failed (RuntimeError): backend crashed")

    def observer() -> None:
        while not done.is_set():
            snapshots.append(stats.snapshot())
            time.sleep(0)

    threads = [threading.Thread(target=f) for f in (subscription, worker, observer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshots.append(stats.snapshot())
    assert len(snapshots) > 10
    assert [s.counts for s in snapshots if s.unaccounted() or s.counts["in_flight"] < 0] == []
    final = snapshots[-1].counts
    assert final["received"] == 5_000 and final["in_flight"] == 0
    assert final["predicted"] > 0 and final["failed"] > 0


def test_health_is_error_from_a_failure_until_a_prediction_works_again():
    stats = NodeStats()
    assert health(stats.snapshot(), None) == (DiagnosticStatus.WARN, "no frames received yet")
    stats.add(received=1, in_flight=1)
    stats.prediction_done(0.02)
    ok = stats.snapshot()
    assert health(ok, None)[0] == DiagnosticStatus.OK

    stats.add(received=1, in_flight=1)
    stats.prediction_failed("inference failed (RuntimeError): backend crashed")
    failed = stats.snapshot()
    level, message = health(failed, ok)
    assert level == DiagnosticStatus.ERROR and "backend crashed" in message
    assert health(stats.snapshot(), failed)[0] == DiagnosticStatus.ERROR  # no new failure, still not working

    stats.add(received=1, in_flight=1)
    stats.prediction_done(0.02)
    assert health(stats.snapshot(), failed) == (DiagnosticStatus.OK, "predicting")


def test_status_carries_every_counter_and_the_last_restart_reason():
    stats = NodeStats()
    stats.add(received=2, skipped=1, rejected=1)
    stats.buffer_restarted("stamp went backwards by 1.000 s")
    values = {kv.key: kv.value for kv in diagnostic_status(stats.snapshot(), None, {"backend": "fake"}).values}
    assert values["backend"] == "fake"
    assert (values["frames_received"], values["frames_skipped"], values["frames_rejected"]) == ("2", "1", "1")
    assert values["frames_in_flight"] == "0" and values["buffer_restarts"] == "1"
    assert values["last_buffer_restart"] == "stamp went backwards by 1.000 s"


def test_a_lasting_warning_is_warn_with_its_reason_until_it_is_cleared():
    stats = NodeStats()
    stats.add(received=3, skipped=3)
    stats.set_warning("camera at 10.0 Hz is slower than the prediction period allows")
    level, message = health(stats.snapshot(), None)
    assert (level, message) == (DiagnosticStatus.WARN, "camera at 10.0 Hz is slower than the prediction period allows")
    values = {kv.key: kv.value for kv in diagnostic_status(stats.snapshot(), None, {}).values}
    assert values["warning"] == message
    stats.set_warning("")
    assert health(stats.snapshot(), None)[0] == DiagnosticStatus.OK
