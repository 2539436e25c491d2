# mmlearn must be imported before anything that may import TensorFlow (see mmlearn/_frameworks.py).
import mmlearn  # noqa: F401
