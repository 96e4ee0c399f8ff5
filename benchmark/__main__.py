"""``python -m mmbench`` runs the command-line interface."""

from mmbench.cli import main

if __name__ == "__main__":
    main()
