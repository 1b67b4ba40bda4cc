"""Install pwavenet_tf: `pip install -e ".[test]"`."""

from setuptools import find_packages, setup

setup(
    name="pwavenet_tf",
    version="0.1.0",
    description="Parallel WaveNet (teacher, IAF student, distillation, export) in TF2/Keras 3",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pwavenet_tf", "pwavenet_tf.*"]),
    include_package_data=True,
    package_data={"pwavenet_tf": ["presets/*/*", "resources/*/*"]},
    install_requires=[
        # Pinned because they must agree: tensorflow-io 0.37.1's compiled ops load only on
        # TF 2.16/2.17, and TFP 0.24 is the release built against TF 2.17.
        "tensorflow==2.17.1",
        "tensorflow-probability==0.24.0",
        "tensorflow-io==0.37.1",
        "tf-keras==2.17.0",
        "keras>=3.4,<3.9",
        "numpy>=1.26,<2.0",
        "absl-py>=2.0",
        "matplotlib>=3.8",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "tensorflow-hub==0.16.1", "pocketsphinx==5.1.1"],
        "eval": ["speechmos", "onnxruntime", "pocketsphinx==5.1.1"],
    },
    entry_points={"console_scripts": ["pwavenet=pwavenet_tf.cli:main"]},
)
