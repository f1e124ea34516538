"""``python -m abstractvision``: the same entry point as the ``abstractvision`` command."""

from .cli import main

if __name__ == "__main__":  # pragma: no branch
    main()
