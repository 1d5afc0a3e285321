"""``python -m edgekd.cli``: the same as the ``edgekd`` command."""

from edgekd.cli import main

main()
