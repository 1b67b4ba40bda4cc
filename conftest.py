"""Test-wide settings: quiet TensorFlow, pin the Keras backend, make the data path known."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
