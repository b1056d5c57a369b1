"""digitrec: recognise handwritten digits.

Train, evaluate and use MNIST digit classifiers with PyTorch. Importing the package has no side
effects; the heavy modules are imported by the functions that need them.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `digitrec.load_model` without importing torch, PIL and scipy when the package is imported.
    if name == "load_model":
        from .predict import load_model

        return load_model
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")
