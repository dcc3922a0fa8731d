"""benchmarks/soak.py: its checks on made-up data (each must catch what it is there for),
and short soak runs against the real node: 12 s in the fast suite, a minute with -m slow."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from ros_helpers import REPO, unique_domain_id

_spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
soak = importlib.util.module_from_spec(_spec)
sys.modules["soak"] = soak  # dataclasses look their module up while the class is built
_spec.loader.exec_module(soak)

PERIOD = 0.1
MS100 = 100_000_000


def feed(parser, input_stamp: int, ks, frame_id: str = "cam", encoding: str = "rgb8") -> None:
    for k in ks:
        parser.add(input_stamp + k * MS100, frame_id, encoding)


def test_group_parser_splits_predictions_into_groups_of_k():
    parser = soak.GroupParser(horizon=3, period_s=PERIOD)
    feed(parser, 1000 * MS100, (1, 2, 3))
    feed(parser, 1001 * MS100, (1, 2, 3))
    assert parser.groups == [soak.Group(1000 * MS100, "cam", "rgb8"), soak.Group(1001 * MS100, "cam", "rgb8")]
    assert (parser.broken, parser.incomplete) == (0, 0)


@pytest.mark.parametrize("second", [
    [(1, "cam", "rgb8"), (3, "cam", "rgb8")],  # a frame missing
    [(1, "cam", "rgb8"), (2, "cam", "rgb8"), (2, "cam", "rgb8")],  # a frame twice
    [(1, "cam", "rgb8"), (2, "other", "rgb8"), (3, "other", "rgb8")],  # frame_id changing within the group
    [(1, "cam", "rgb8"), (2, "cam", "bgr8"), (3, "cam", "bgr8")],  # encoding changing within the group
], ids=["missing", "twice", "frame_id", "encoding"])
def test_group_parser_counts_a_group_that_is_cut_short_or_mixed(second):
    parser = soak.GroupParser(horizon=3, period_s=PERIOD)
    feed(parser, 1000 * MS100, (1, 2, 3))
    for k, frame_id, encoding in second:
        parser.add(1001 * MS100 + k * MS100, frame_id, encoding)
    assert parser.groups[0] == soak.Group(1000 * MS100, "cam", "rgb8")
    assert soak.Group(1001 * MS100, "cam", "rgb8") not in parser.groups
    assert parser.broken + parser.incomplete > 0


def test_match_counts_missing_unexpected_and_wrongly_encoded_predictions():
    expected = [soak.ExpectedInput(s, "cam", "rgb8") for s in (10, 11, 12, 13)]
    groups = [soak.Group(10, "cam", "rgb8"), soak.Group(12, "cam", "bgr8"), soak.Group(99, "cam", "rgb8")]
    match = soak.match_predictions(expected, groups)
    assert (match.predicted, match.missing, match.wrong_encoding, match.unexpected) == (2, 2, 1, 1)
    assert soak.match_predictions(expected, [soak.Group(s, "cam", "rgb8") for s in (10, 11, 12, 13)]) == \
        soak.Match(predicted=4)


def test_expectation_skips_the_frames_that_refill_the_buffer_after_each_restart():
    expectation = soak.Expectation(input_frames=3)
    for i in range(5):
        expectation.good_frame(i, "cam", "mono8")
    expectation.bad_message()
    expectation.duplicate()
    expectation.restart()
    for i in range(3):
        expectation.good_frame(100 + i, "cam", "yuv422")
    assert [(e.stamp_ns, e.encoding) for e in expectation.predictable] == [(2, "mono8"), (3, "mono8"), (4, "mono8"),
                                                                           (102, "rgb8")]
    assert (expectation.published, expectation.rejected, expectation.skipped, expectation.restarts) == (10, 1, 5, 1)


def test_count_checks_name_every_counter_that_does_not_add_up():
    node = {"frames_received": 10, "frames_rejected": 1, "frames_skipped": 2, "frames_dropped": 1,
            "frames_predicted": 6, "frames_failed": 0, "frames_in_flight": 0, "buffer_restarts": 1}
    expected = {"published": 10, "rejected": 1, "skipped": 2, "restarts": 1, "predictable": 7}
    failures: list[str] = []
    soak.check_counts(node, expected, [], failures)
    assert failures == []
    soak.check_counts(dict(node, frames_rejected=2, frames_failed=1), expected, [{"a": "report"}], failures)
    assert len(failures) == 3 and "rejected" in failures[1] and "failed" in failures[2]
    assert soak.unaccounted({"frames_received": "5", **{f"frames_{o}": "1" for o in soak.OUTCOMES}}) == -1


def test_memory_growth_is_measured_after_warm_up():
    flat = [(float(t), 100.0 + (50.0 if t < 5 else 0.3 * (t % 2))) for t in range(60)]
    growth, _ = soak.rss_growth_mb(flat, warmup_s=5)
    assert abs(growth) < 0.5
    leaking = [(float(t), 100.0 + 0.5 * t) for t in range(60)]
    growth, slope = soak.rss_growth_mb(leaking, warmup_s=5)
    assert growth > 20 and slope == pytest.approx(0.5 * 3600)
    with pytest.raises(ValueError, match="run longer"):
        soak.rss_growth_mb(flat[:7], warmup_s=5)


def run_soak(tmp_path, duration: float, fault_every: float, domain_offset: int) -> dict:
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak.py"), "--duration", str(duration), "--fault-every",
         str(fault_every), "--domain-id", str(unique_domain_id(domain_offset)), "--json", str(out),
         "--log", str(tmp_path / "node.log")],
        capture_output=True, text=True, timeout=duration + 150, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr + (tmp_path / "node.log").read_text()
    return json.loads(out.read_text())


def test_12_second_soak_with_every_fault_passes(tmp_path):
    summary = run_soak(tmp_path, duration=12, fault_every=1.0, domain_offset=105)
    assert summary["failures"] == []
    assert all(count >= 1 for count in summary["faults"].values()), summary["faults"]  # every kind injected
    assert summary["predictions"]["predicted_inputs"] > 0
    assert summary["node"]["frames_received"] == summary["published"]
    assert summary["shutdown"]["exit_code"] == 0


@pytest.mark.slow
def test_one_minute_soak_passes(tmp_path):
    summary = run_soak(tmp_path, duration=60, fault_every=3, domain_offset=106)
    assert summary["failures"] == [] and summary["predictions"]["predicted_inputs"] > 0
