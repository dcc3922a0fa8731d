from glob import glob

from setuptools import find_packages, setup

package_name = "video_predictor"
# The offline trainer lives in training/ (``python -m training.train`` from the repository)
# and installs as video_predictor_training, so that no generic top-level ``training``
# package lands in site-packages; its modules import each other relatively, so both work.
trainer = "video_predictor_training"
trainer_packages = [trainer] + [f"{trainer}.{p}" for p in find_packages("training")]

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["video_predictor", "video_predictor.*"]) + trainer_packages,
    package_dir={trainer: "training"},
    package_data={"video_predictor": ["pretrained/*.pt", "pretrained/*.onnx", "pretrained/*.json"],
                  trainer: ["configs/*.yaml"]},  # the presets: --config cpu-small after colcon build
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="video_predictor maintainers",
    maintainer_email="maintainers@video-predictor.invalid",
    description="Predicts a robot camera's next frames and their per-pixel uncertainty.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "predictor_node = video_predictor.ros.main:main",
            "predictor_lifecycle_node = video_predictor.ros.main:lifecycle_main",
        ],
    },
)
