"""The nhgis_tracts example pipeline (see its files; `kfm-prov demo` runs it)."""
