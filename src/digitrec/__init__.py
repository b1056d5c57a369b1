"""digitrec: recognise handwritten digits.

Train, evaluate and use MNIST digit classifiers with PyTorch. Importing the package has no side
effects; the heavy modules are imported by the functions that need them.
"""

__version__ = "0.1.0"
