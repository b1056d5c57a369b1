"""`python -m digitrec` runs the CLI (and is what `torchrun -m digitrec` launches)."""

from .cli import main

if __name__ == "__main__":
    main()
