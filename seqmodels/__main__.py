"""`python -m seqmodels` runs the command-line interface."""

from seqmodels.cli.main import main

if __name__ == "__main__":
    main()
