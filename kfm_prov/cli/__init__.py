"""The ``kfm-prov`` command: a thin layer over ``kfm_prov.Lake``."""
