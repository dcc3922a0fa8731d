"""predictor_node with a stochastic (svg) model, in-process over DDS: the samples and
publish parameters reach the predictor, at start-up and at run time, and
/predicted_uncertainty carries the spread of the samples."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter

from video_predictor.backends import create_predictor
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import save_model_file
from video_predictor.models import build_model
from video_predictor.ros.node import PredictorNode

from ros_helpers import Probe, image_msg, unique_domain_id

DOMAIN = unique_domain_id(131)
SECOND = 1_000_000_000
PERIOD_NS = 100_000_000
TINY = {"input_frames": 2, "channels": 1, "size": 16, "filters": 4, "g_dim": 8, "z_dim": 3, "rnn_size": 8}


@pytest.fixture
def svg_node(tmp_path):
    model = build_model("svg", TINY)
    with_spread = {k: v * 20 if k.startswith("predictor.embed") else v for k, v in model.state_dict().items()}  # z matters more
    metadata = ModelMetadata(family="svg", input_frames=2, horizon=2, height=16, width=16, channels=1, frame_period=0.1,
                             uncertainty="samples", stochastic=True, model_config=model.config.to_dict())
    save_model_file(tmp_path / "svg.pt", metadata, with_spread)
    probe = Probe(DOMAIN, name="svg_probe")
    factory = lambda **kw: create_predictor(**{**kw, "model": str(tmp_path / "svg.pt"), "backend": "torch"})  # noqa: E731
    node = PredictorNode(predictor_factory=factory, context=probe.context,
                         parameter_overrides=[Parameter("samples", value=4), Parameter("publish", value="sample")])
    probe.executor.add_node(node)
    publisher = probe.publisher(reliable=True)
    assert probe.spin_until(lambda: publisher.get_subscription_count() > 0, 10)
    yield probe, node, publisher
    probe.executor.remove_node(node)
    node.destroy_node()
    probe.close()


def send_pair(probe, publisher, start: int) -> None:
    rng = np.random.default_rng(start)
    for i in (start, start + 1):
        publisher.publish(image_msg(rng.integers(0, 256, (16, 16, 1), dtype=np.uint8), "mono8", 80 * SECOND + i * PERIOD_NS, "cam"))


def std_maps(probe, first: int) -> list[np.ndarray]:
    return [np.frombuffer(m.data, np.float32).reshape(16, 16) for m in probe.uncertainty[first:]]


def test_samples_and_publish_reach_the_predictor_and_the_uncertainty_is_their_spread(svg_node):
    probe, node, publisher = svg_node
    assert (node.predictor.samples, node.predictor.publish) == (4, "sample")
    assert node.predictor.metadata.uncertainty == "samples"
    send_pair(probe, publisher, 0)
    assert probe.spin_until(lambda: len(probe.frames) == 2 and len(probe.uncertainty) == 2, 15)
    assert all(m.encoding == "32FC1" for m in probe.uncertainty)
    assert all(s.max() > 0 for s in std_maps(probe, 0))

    results = node.set_parameters([Parameter("samples", value=1), Parameter("publish", value="mean")])
    assert all(r.successful for r in results)
    assert (node.predictor.samples, node.predictor.publish) == (1, "mean")
    send_pair(probe, publisher, 10)  # a time jump: the buffer restarts, then fills again
    assert probe.spin_until(lambda: len(probe.uncertainty) == 4, 15)
    assert all((s == 0).all() for s in std_maps(probe, 2))  # one sample: no spread

    (refused,) = node.set_parameters([Parameter("publish", value="median")])
    assert not refused.successful and "publish" in refused.reason
