"""The kansas_memory example pipeline (see its files; `kfm-prov demo` runs it)."""
