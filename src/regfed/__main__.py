"""``python -m regfed``: the same as the ``regfed`` command."""

from regfed.cli.main import main

main()
