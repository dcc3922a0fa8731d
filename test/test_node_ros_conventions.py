"""predictor_node follows ROS conventions, over real DDS: relative topic names (two robots
in their own namespaces do not hear each other), CompressedImage input (JPEG of real
carphone frames, image_transport's ``<camera topic>/compressed``), camera_info in and the
predicted frames' CameraInfo out, and one message per input holding all K frames.

Two node processes: /robot1 takes compressed images, /robot2 raw ones."""

from __future__ import annotations

import itertools
import subprocess

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from video_predictor.contract import DIAGNOSTICS_STATUS_NAME
from video_predictor.core.compressed import encode_compressed
from video_predictor.core.preprocess import fit_to_model
from video_predictor.io.video import carphone_clip, video_frames
from video_predictor.ros.camera_info import fitted_intrinsics

from ros_helpers import REPO, ProbeNode, image_msg, node_command, qos, ros_env, stamp_ns, stop_process, unique_domain_id

DOMAIN = unique_domain_id(121)
SECOND = 1_000_000_000
PERIOD_NS = 33_366_667  # 29.97 fps, as the carphone clip
ROBOTS = ("/robot1", "/robot2")
TOPICS = {"frames": (Image, "predicted_frames"), "uncertainty": (Image, "predicted_uncertainty"),
          "sequence": (Image, "predicted_sequence"), "sequence_std": (Image, "predicted_sequence_uncertainty"),
          "info": (CameraInfo, "predicted_camera_info")}
# a 176x144 camera's calibration (the carphone frames' size)
K = [150.0, 0.0, 90.5, 0.0, 148.0, 70.25, 0.0, 0.0, 1.0]
P = [150.0, 0.0, 90.5, -15.0, 0.0, 148.0, 70.25, 0.0, 0.0, 0.0, 1.0, 0.0]


def carphone(count: int) -> list[np.ndarray]:
    return [f.image for f in itertools.islice(video_frames(carphone_clip()), 30, 30 + count)]


class Recorder(ProbeNode):
    """Records what the namespaced nodes publish, and the root namespace's outputs (which
    must stay silent), in its own context."""

    def __init__(self) -> None:
        super().__init__(DOMAIN, "conventions_probe")
        self.got: dict[tuple[str, str], list] = {}
        for ns in (*ROBOTS, ""):
            for key, (msg_type, name) in TOPICS.items():
                self.got[ns, key] = []
                self.node.create_subscription(msg_type, f"{ns}/{name}", self.got[ns, key].append,
                                              qos(reliable=True, depth=200))
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_diagnostics(self, array: DiagnosticArray) -> None:
        for status in array.status:
            if status.name == DIAGNOSTICS_STATUS_NAME:  # told apart by hardware_id: the node's full name
                self.diagnostics[status.hardware_id] = {kv.key: kv.value for kv in status.values}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    logs = tmp_path_factory.mktemp("nodes")
    processes = []
    for ns, transport in zip(ROBOTS, ("compressed", "raw")):
        log_path = logs / f"{ns.strip('/')}.log"
        command = node_command("--params-file", str(REPO / "config" / "predictor.yaml"), "-r", f"__ns:={ns}",
                               "-p", f"image_transport:={transport}", "-p", "diagnostics_period:=0.2")
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, env=ros_env(DOMAIN), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        process.log_path = log_path
        processes.append(process)
    recorder = Recorder()
    up = recorder.spin_until(lambda: len(recorder.diagnostics) == 2 or any(p.poll() is not None for p in processes), 90)
    if not up or any(p.poll() is not None for p in processes):
        pytest.fail("nodes did not come up:\n" + "\n".join(p.log_path.read_text() for p in processes))
    yield recorder
    recorder.close()
    for process in processes:
        stop_process(process)


def stamped(msg, ns: int, frame_id: str = "camera"):
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, SECOND)
    return msg


def feed(recorder: Recorder, publisher, messages, ns: str, info_publisher=None, info: CameraInfo | None = None):
    """Publish ``messages`` one at a time (and ``info`` before each, as a camera does) and
    wait until the node has counted each; returns its counters at the end."""
    assert recorder.spin_until(lambda: publisher.get_subscription_count() > 0, 15), f"{ns}: camera not matched"
    if info_publisher is not None:
        assert recorder.spin_until(lambda: info_publisher.get_subscription_count() > 0, 15)
    name = f"{ns}/predictor_node"
    for msg in messages:
        before = int(recorder.diagnostics[name]["frames_received"])
        for _ in range(20):  # best-effort subscription: the first samples may miss the match
            if info is not None:
                info_publisher.publish(info)
            publisher.publish(msg)
            if recorder.spin_until(lambda: int(recorder.diagnostics[name]["frames_received"]) > before, 1.0):
                break
        else:
            raise AssertionError(f"{ns}: the node never received a message")
    assert recorder.spin_until(lambda: int(recorder.diagnostics[name]["frames_in_flight"]) == 0, 15)
    recorder.spin_until(lambda: False, 0.5)  # the last outputs and a fresh report arrive
    return recorder.diagnostics[name]


def test_two_namespaced_nodes_compressed_and_raw_with_camera_info_and_sequences(nodes):
    recorder = nodes
    values = recorder.diagnostics["/robot1/predictor_node"]
    n, horizon = int(values["input_frames"]), int(values["horizon"])
    height, width = (int(x) for x in values["resolution"].split("x"))
    frames = carphone(n + 3)
    start = 500 * SECOND

    # robot1: JPEG CompressedImage on /robot1/camera/image_raw/compressed, one corrupt message
    compressed = []
    for i, frame in enumerate(frames):
        fmt, data = encode_compressed(frame[:, :, ::-1], "jpeg", "bgr8", quality=95)
        compressed.append(stamped(CompressedImage(format=fmt, data=data), start + i * PERIOD_NS))
    corrupt = stamped(CompressedImage(format="jpeg", data=compressed[0].data[:300]), start - 10 * PERIOD_NS)
    info = stamped(CameraInfo(height=144, width=176, distortion_model="plumb_bob", d=[0.01, -0.02, 0.0, 0.0, 0.0],
                              k=K, r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], p=P), start)
    node = recorder.node
    camera1 = node.create_publisher(CompressedImage, "/robot1/camera/image_raw/compressed", qos(reliable=True))
    info1 = node.create_publisher(CameraInfo, "/robot1/camera/camera_info", qos(reliable=True))
    raw_on_robot1 = node.create_publisher(Image, "/robot1/camera/image_raw", qos(reliable=True))
    # robot2: raw bgr8 on /robot2/camera/image_raw, no camera_info
    camera2 = node.create_publisher(Image, "/robot2/camera/image_raw", qos(reliable=True))
    raw = [image_msg(f[:, :, ::-1], "bgr8", start + i * PERIOD_NS, "camera2") for i, f in enumerate(frames[: n + 1])]

    counts1 = feed(recorder, camera1, [corrupt, *compressed], "/robot1", info1, info)
    counts2 = feed(recorder, camera2, raw, "/robot2")
    # the default model adapts online: the frames that arrived scored the predictions made for them
    assert int(counts1["adaptation"].rsplit("frames scored: ", 1)[1]) >= 1, counts1["adaptation"]
    for msg in raw[:3]:  # a raw image on robot1's raw topic: robot1 subscribes to the compressed one only
        raw_on_robot1.publish(msg)
    recorder.spin_until(lambda: False, 0.5)

    # each node predicted from its own camera only; nothing in the root namespace
    predicted1, predicted2 = int(counts1["frames_predicted"]), int(counts2["frames_predicted"])
    assert int(counts1["frames_rejected"]) == 1 and int(counts1["frames_received"]) == len(frames) + 1
    assert predicted1 >= 1 and predicted2 >= 1
    assert int(recorder.diagnostics["/robot1/predictor_node"]["frames_received"]) == len(frames) + 1
    assert int(counts2["frames_received"]) == len(raw)
    for key in TOPICS:
        assert recorder.got["", key] == [], key
    got1 = {key: recorder.got["/robot1", key] for key in TOPICS}
    got2 = {key: recorder.got["/robot2", key] for key in TOPICS}
    assert len(got1["frames"]) == horizon * predicted1 and len(got2["frames"]) == horizon * predicted2
    assert len(got1["sequence"]) == len(got1["sequence_std"]) == predicted1
    assert len(got2["sequence"]) == predicted2
    assert all(f.header.frame_id == "camera2" for f in got2["frames"])

    # the compressed input's predictions: bgr8 like the camera, close to the last input
    last = got1["frames"][-horizon]
    assert last.encoding == "bgr8" and (last.height, last.width) == (height, width)
    predicted = np.frombuffer(last.data, np.uint8).reshape(height, width, 3)
    source_stamps = [stamp_ns(m) for m in compressed]
    newest = source_stamps.index(stamp_ns(got1["sequence"][-1]))
    assert cv2.PSNR(predicted, fit_to_model(frames[newest][:, :, ::-1].copy(), height, width)) > 20

    # predicted_sequence: one message per input, stamped with the input's stamp, K frames
    # stacked top to bottom, identical to the K messages on predicted_frames
    for i, (sequence, std) in enumerate(zip(got1["sequence"], got1["sequence_std"])):
        assert stamp_ns(sequence) in source_stamps and stamp_ns(std) == stamp_ns(sequence)
        assert (sequence.height, sequence.width, sequence.encoding) == (horizon * height, width, "bgr8")
        assert (std.height, std.width, std.encoding) == (horizon * height, width, "32FC1")
        singles = got1["frames"][i * horizon : (i + 1) * horizon]
        assert bytes(sequence.data) == b"".join(bytes(f.data) for f in singles)
        singles_std = got1["uncertainty"][i * horizon : (i + 1) * horizon]
        assert bytes(std.data) == b"".join(bytes(m.data) for m in singles_std)
        assert stamp_ns(singles[0]) > stamp_ns(sequence)

    # predicted_camera_info: one per predicted frame, same header, K and P cropped and scaled
    assert len(got1["info"]) == len(got1["frames"]) and got2["info"] == []
    expected_k, expected_p = fitted_intrinsics(np.array(K), np.array(P), 144, 176, height, width)
    for frame, cam in zip(got1["frames"], got1["info"]):
        assert cam.header == frame.header
        assert (cam.height, cam.width, cam.distortion_model) == (height, width, "plumb_bob")
        np.testing.assert_allclose(cam.k, expected_k.reshape(-1))
        np.testing.assert_allclose(cam.p, expected_p.reshape(-1))
        np.testing.assert_allclose(cam.d, [0.01, -0.02, 0.0, 0.0, 0.0])


def test_replaying_a_compressed_bag_feeds_the_compressed_node(nodes, tmp_path):
    """video_predictor.ros.replay finds /camera/image_raw/compressed from the default topic and
    replays it as CompressedImage; the robot1 node (image_transport compressed) predicts."""
    import sys

    from video_predictor.io import bags

    recorder = nodes
    frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in carphone(8)]
    bags.write_image_bag(tmp_path / "bag", frames, "/camera/image_raw/compressed",
                           [700 + i / 29.97 for i in range(len(frames))], encoding="bgr8", compression="jpeg")
    name = "/robot1/predictor_node"
    before = {k: int(recorder.diagnostics[name][k]) for k in ("frames_received", "frames_predicted")}
    replay = subprocess.Popen([sys.executable, "-m", "video_predictor.replay", "--bag", str(tmp_path / "bag"),
                               "--to", "/robot1/camera/image_raw/compressed", "--wait", "15"],
                              env=ros_env(DOMAIN), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert recorder.spin_until(lambda: replay.poll() is not None, 60), "replay did not finish"
    output = replay.stdout.read()
    assert replay.returncode == 0 and "replayed 8 of 8 images (CompressedImage)" in output, output
    assert recorder.spin_until(
        lambda: int(recorder.diagnostics[name]["frames_received"]) >= before["frames_received"] + 7, 15)
    assert recorder.spin_until(
        lambda: int(recorder.diagnostics[name]["frames_predicted"]) > before["frames_predicted"], 15)


def test_the_python_api_predicts_the_nodes_pixels(nodes):
    """VideoPredictor on the full-size frames gives what robot2's node publishes for them
    (same preprocessing, same default model): within one grey level."""
    from video_predictor import VideoPredictor

    recorder = nodes
    frames = carphone(6)
    start = 900 * SECOND
    raw = [image_msg(f, "rgb8", start + i * PERIOD_NS, "api_check") for i, f in enumerate(frames)]
    camera = recorder.node.create_publisher(Image, "/robot2/camera/image_raw", qos(reliable=True))
    seen = len(recorder.got["/robot2", "sequence"])
    feed(recorder, camera, raw, "/robot2")
    published = {stamp_ns(m): m for m in recorder.got["/robot2", "sequence"][seen:]}
    api = VideoPredictor()
    compared = 0
    for i, frame in enumerate(frames):
        result = api.add(frame, (start + i * PERIOD_NS) / 1e9)
        if result is None or (start + i * PERIOD_NS) not in published:
            continue
        msg = published[start + i * PERIOD_NS]
        node_frames = np.frombuffer(msg.data, np.uint8).reshape(result.frames.shape)
        assert np.abs(node_frames.astype(int) - result.frames).max() <= 1
        compared += 1
    assert compared >= 1
