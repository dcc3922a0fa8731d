"""`colcon build` installs video_predictor in the layout `ros2 run` and `ros2 launch` expect."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("colcon_core", reason="colcon is not installed")

REPO = Path(__file__).resolve().parents[1]


def colcon_command() -> list[str]:
    script = Path(sys.executable).parent / "colcon"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from colcon_core.command import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def install_tree(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("colcon")
    command = colcon_command() + [
        "--log-base", str(work / "log"), "build", "--base-paths", str(REPO),
        "--build-base", str(work / "build"), "--install-base", str(work / "install"),
    ]
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "install" / "video_predictor"


@pytest.mark.parametrize("relative", [
    "share/ament_index/resource_index/packages/video_predictor",
    "share/video_predictor/package.xml",
    "share/video_predictor/launch/predictor.launch.py",
    "share/video_predictor/config/predictor.yaml",
])
def test_install_tree_has_the_ament_layout(install_tree, relative):
    assert (install_tree / relative).is_file()


@pytest.mark.parametrize("name", ["predictor_node", "predictor_lifecycle_node"])
def test_console_script_is_installed_where_ros2_run_looks(install_tree, name):
    script = install_tree / "lib" / "video_predictor" / name
    assert script.is_file() and os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!") and name in text


def test_installed_node_runs_from_the_install_tree(install_tree, tmp_path):
    """The installed script starts and validates its parameters (exit 2 on a bad one)."""
    site_packages = next(install_tree.glob("lib/python3*/site-packages"))
    assert (site_packages / "video_predictor" / "ros" / "node.py").is_file()  # subpackages install too
    assert (site_packages / "video_predictor" / "pretrained" / "default.onnx").is_file()  # the default model ships
    env = dict(os.environ, PYTHONPATH=str(site_packages), ROS_DOMAIN_ID=str(1 + os.getpid() % 100),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    script = install_tree / "lib" / "video_predictor" / "predictor_node"
    result = subprocess.run([sys.executable, str(script), "--ros-args", "-p", "device:=abacus"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "device must be auto, cpu, cuda or cuda:N" in result.stderr


def test_trainer_installs_namespaced_with_its_presets(install_tree, tmp_path):
    """No generic top-level ``training`` package in the install tree; the trainer installs as
    video_predictor_training with its presets, and trains from there (``--config cpu-small``
    is the default preset), outside the repository."""
    site_packages = next(install_tree.glob("lib/python3*/site-packages"))
    assert not (site_packages / "training").exists()
    assert (site_packages / "video_predictor_training" / "configs" / "cpu-small.yaml").is_file()
    env = dict(os.environ, PYTHONPATH=str(site_packages))
    tiny = "{input_frames: 2, consistency_frames: 1, scales: [{features: [4], kernels: [3, 3]}, {features: [4], kernels: [3, 3]}]}"
    command = [sys.executable, "-m", "video_predictor_training.train", "--steps", "1", "--out", str(tmp_path / "run"),
               "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard", "--set", f"model.config={tiny}",
               "--set", "data.input_frames=2", "--set", "data.height=32", "--set", "data.width=32",
               "--set", "data.synthetic_clips=4", "--set", "data.val_clips=2", "--set", "optim.batch_size=2",
               "--set", "optim.val_every=100", "--set", "optim.threads=1"]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    from video_predictor.core.model_file import load_model_file

    metadata, _, _ = load_model_file(tmp_path / "run" / "model.pt")
    assert metadata.training_data.endswith("preset cpu-small")
