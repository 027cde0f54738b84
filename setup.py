"""ament_python package anyseg_ros: the node (anyseg_ros) and the anymodal segmentor (anyseg_model).

Works with pip (`pip install -e .[ros,train,dev]`) and with `colcon build` on a ROS 2 install,
where rclpy and the message packages come from the system rather than the `[ros]` extra.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "anyseg_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Anymodal multi-sensor semantic segmentation for ROS 2 (AnySeg)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["anyseg_model", "anyseg_model.*", "anyseg_ros", "anyseg_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["numpy>=1.24", "torch>=2.1", "pyyaml>=6"],
    extras_require={
        # pip wheels of ROS 2 Kilted; on a ROS 2 install these come from the system instead.
        "ros": [
            "ros-rclpy",
            "ros-sensor-msgs",
            "ros-std-msgs",
            "ros-geometry-msgs",
            "ros-builtin-interfaces",
            "ros-diagnostic-msgs",
            "ros-rcl-interfaces",
            "ros-rmw-fastrtps-cpp",
        ],
        "train": ["rosbags>=0.10", "mcap>=1.1", "tqdm>=4.60", "pillow>=9", "matplotlib>=3.6", "tensorboard>=2.12"],
        "dev": ["pytest>=7.4", "pytest-timeout>=2.1", "ruff>=0.4", "colcon-common-extensions>=0.3"],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "anyseg_node = anyseg_ros.node:main",
            "anyseg-replay = anyseg_ros.replay:main",
            "anyseg-evaluate = anyseg_ros.evaluate:main",
        ]
    },
)
