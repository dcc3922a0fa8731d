"""predictor_lifecycle_node over real DDS, driven through its lifecycle services as
``ros2 lifecycle set`` does: configure loads the model (diagnostics start, no camera
subscription yet), activate subscribes, deactivate drops the subscription, cleanup
unloads, and configure again works; a model that does not load fails configure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from ros_helpers import REPO, Probe, image_msg, moving_scene, ros_env, stop_process, unique_domain_id

DOMAIN = unique_domain_id(122)
SECOND = 1_000_000_000


@pytest.fixture
def lifecycle_node(tmp_path, request):
    extra = getattr(request, "param", ())
    script = Path(sys.executable).parent / "predictor_lifecycle_node"
    log_path = tmp_path / "node.log"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "video_predictor.ros.lifecycle_node"]
    with open(log_path, "w") as log:
        process = subprocess.Popen([*command, "--ros-args", "--params-file", str(REPO / "config" / "predictor.yaml"),
                                    "-p", "diagnostics_period:=0.2", *extra],
                                   env=ros_env(DOMAIN), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    process.log_path = log_path
    probe = Probe(DOMAIN, name="lifecycle_probe")
    yield process, probe
    probe.close()
    stop_process(process)


class Lifecycle:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self._change = probe.node.create_client(ChangeState, "/predictor_node/change_state")
        self._get = probe.node.create_client(GetState, "/predictor_node/get_state")

    def state(self) -> str:
        return self.probe.call(self._get, GetState.Request(), timeout=30).current_state.label

    def set(self, transition: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition))
        return self.probe.call(self._change, request, timeout=60).success


def test_configure_loads_activate_subscribes_deactivate_unsubscribes(lifecycle_node):
    process, probe = lifecycle_node
    lifecycle = Lifecycle(probe)
    camera = probe.publisher(reliable=True)
    assert lifecycle.state() == "unconfigured"
    probe.spin_for(0.5)
    assert probe.diagnostics == [] and camera.get_subscription_count() == 0

    assert lifecycle.set(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state() == "inactive"
    assert probe.spin_until(lambda: probe.diagnostics, 10), "no diagnostics once configured"
    assert camera.get_subscription_count() == 0  # configured, not yet subscribed

    assert lifecycle.set(Transition.TRANSITION_ACTIVATE)
    assert lifecycle.state() == "active"
    assert probe.spin_until(lambda: camera.get_subscription_count() == 1, 10)
    for i, pixels in enumerate(moving_scene(8, 48, 64)):
        camera.publish(image_msg(pixels, "rgb8", 100 * SECOND + i * 33_333_333, "cam"))
        probe.spin_for(0.1)
    assert probe.spin_until(lambda: len(probe.frames) >= 5, 15), "no predictions while active"

    assert lifecycle.set(Transition.TRANSITION_DEACTIVATE)
    assert lifecycle.state() == "inactive"
    assert probe.spin_until(lambda: camera.get_subscription_count() == 0, 10)
    assert lifecycle.set(Transition.TRANSITION_CLEANUP)
    assert lifecycle.state() == "unconfigured"
    assert lifecycle.set(Transition.TRANSITION_CONFIGURE) and lifecycle.set(Transition.TRANSITION_ACTIVATE)
    assert probe.spin_until(lambda: camera.get_subscription_count() == 1, 10)
    assert process.poll() is None


@pytest.mark.parametrize("lifecycle_node", [("-p", "model:=/no/such/model.onnx")], indirect=True)
def test_a_model_that_does_not_load_fails_configure_and_the_node_stays(lifecycle_node):
    process, probe = lifecycle_node
    lifecycle = Lifecycle(probe)
    assert lifecycle.state() == "unconfigured"
    assert not lifecycle.set(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state() == "unconfigured" and process.poll() is None
    assert "/no/such/model.onnx" in process.log_path.read_text()
