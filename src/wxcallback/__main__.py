"""``python -m wxcallback``: the same command line as the ``wxcallback`` script."""

from wxcallback.cli import main

main()
