"""ament_python package anyseg_ros: the robot-side node (anyseg_ros), the anymodal segmentor
(anyseg_model), the offline tools (anyseg_tools: bags, replay, evaluation), the synthetic world
(anyseg_sim) and the training recipe (training).

Works with pip (`pip install -e .[ros,train,dev,codecs]`) and with `colcon build` on a ROS 2
install, where rclpy and the message packages come from the system rather than the `[ros]`
extra.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "anyseg_ros"
PYTHON_PACKAGES = ("anyseg_model", "anyseg_ros", "anyseg_tools", "anyseg_sim", "training")

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Anymodal multi-sensor semantic segmentation for ROS 2 (AnySeg)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[f"{p}{sub}" for p in PYTHON_PACKAGES for sub in ("", ".*")]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    # numba compiles the EVT 3.0 and RVL decoders (anyseg_ros/core/compiled.py) and the CPU's
    # LiDAR projection (anyseg_model/lidar_kernel.py).
    install_requires=["numpy>=1.24", "torch>=2.1", "pyyaml>=6", "numba>=0.59"],
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
            "ros-lifecycle-msgs",  # anyseg_lifecycle_node
            "ros-rcl-lifecycle",
            "ros-rosgraph-msgs",  # anyseg-replay --clock
        ],
        "train": [
            "rosbags>=0.10",
            "mcap>=1.1",
            "tqdm>=4.60",
            "pillow>=9",
            "matplotlib>=3.6",
            "tensorboard>=2.12",
            "opencv-python-headless>=4.8",  # bags with compressed images
        ],
        # image_transport's compressed / compressedDepth payloads (JPEG, PNG): anyseg_ros.transport
        "codecs": ["opencv-python-headless>=4.8"],
        # ONNX export and the onnxruntime backend (CPU; GPUs: onnxruntime-gpu instead).
        "deploy": ["onnx>=1.16", "onnxruntime>=1.17", "onnxscript>=0.1"],
        "dev": [
            "pytest>=7.4",
            "pytest-timeout>=2.1",
            "ruff>=0.4",
            "colcon-common-extensions>=0.3",
            "opencv-python-headless>=4.8",  # reference conversions and projections in tests
        ],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "anyseg_node = anyseg_ros.node:main",
            "anyseg_lifecycle_node = anyseg_ros.lifecycle_node:main",
            "anyseg-replay = anyseg_tools.replay:main",
            "anyseg-evaluate = anyseg_tools.evaluate:main",
            "anyseg-synthesize = anyseg_sim.cli:main",
            "anyseg-export = anyseg_model.export:main",
        ]
    },
)
