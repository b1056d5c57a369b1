"""digitrec: recognise handwritten digits.

Train, evaluate and use MNIST digit classifiers with PyTorch. Importing the package has no side
effects, and does not import torch: `digitrec.load_model` (one digit per image) and
`digitrec.load_reader` (a whole number per image) import what they need when first used.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # The two entry points, without importing torch, PIL and scipy when the package is imported.
    if name == "load_model":
        from .loading import load_model

        return load_model
    if name == "load_reader":
        from .read import load_reader

        return load_reader
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")
