"""Live evaluation of a real compressed bag (JPEG carphone frames on
/camera/image_raw/compressed): the evaluator replays it as CompressedImage into a node
with image_transport compressed, decodes the camera frames it hears the same way, and
scores the node's predictions."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from video_predictor.evaluation import offline
from video_predictor.io import bags
from video_predictor.io.video import carphone_clip, video_frames

from ros_helpers import REPO, start_node, stop_process, unique_domain_id

DOMAIN = unique_domain_id(124)


@pytest.fixture(scope="module")
def compressed_node(tmp_path_factory):
    process = start_node(DOMAIN, tmp_path_factory.mktemp("node") / "predictor_node.log",
                         "--params-file", str(REPO / "config" / "predictor.yaml"), "-p", "diagnostics_period:=0.2",
                         "-p", "image_transport:=compressed")
    yield process
    stop_process(process)


def test_live_evaluation_of_a_compressed_bag(tmp_path, compressed_node, monkeypatch):
    count = 16
    frames = [np.ascontiguousarray(f.image[:, :, ::-1]) for f in itertools.islice(video_frames(carphone_clip()), 40, 40 + count)]
    bags.write_image_bag(tmp_path / "bag", frames, "/camera/image_raw/compressed",
                           [300 + i / 29.97 for i in range(count)], encoding="bgr8", compression="jpeg")
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    code = offline.main(["--live", "--bag", str(tmp_path / "bag"), "--out", str(tmp_path / "out"),  # default --topic
                          "--domain-id", str(DOMAIN), "--rate", "0.5", "--idle-timeout", "0.5", "--wait", "60",
                          "--no-progress", "--no-figures"])
    assert code == 0, compressed_node.log_path.read_text()[-2000:]
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    live = written["live"]
    assert live["camera_published"] == live["camera_in_bag"] == count
    assert live["camera_received"] == count and written["stream"]["rejected"] == 0
    assert written["frames"] > 0
    assert 25 < written["copy_last"]["psnr"][0] < 45 and 25 < written["model"]["psnr"][0] < 45
