"""The glo_land_patents example pipeline (see its files; `kfm-prov demo` runs it)."""
