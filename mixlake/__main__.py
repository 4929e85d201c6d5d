"""`python -m mixlake`: the same as the `mixlake` console script."""

from mixlake.launcher import entry

if __name__ == "__main__":
    entry()
