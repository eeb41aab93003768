"""ament_python build of lightglue_ros; also installs with pip for use without ROS."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lightglue_ros"
TOOLS = "lightglue_ros_tools"  # stress and fault injection; the product never imports it

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", TOOLS, f"{TOOLS}.*"]),
    package_data={PACKAGE: ["slam/vocabulary/*.npz"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/engines", ["engines/README.md"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="lightglue_ros developers",
    maintainer_email="lightglue-ros@example.com",
    description="Real-time camera tracking with learned local features (SuperPoint, ALIKED, "
                "DISK) and LightGlue for ROS 2.",
    license="Apache-2.0",
    python_requires=">=3.10",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "lightglue-ros = lightglue_ros.cli.main:main",
            "tracker_node = lightglue_ros.ros.node:main",
        ],
    },
)
