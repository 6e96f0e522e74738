"""``python -m kfm_prov.cli``: the same as the ``kfm-prov`` command."""

from kfm_prov.cli.entry import main

main()
