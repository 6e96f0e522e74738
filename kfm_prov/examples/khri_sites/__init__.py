"""The khri_sites example pipeline (see its files; `kfm-prov demo` runs it)."""
