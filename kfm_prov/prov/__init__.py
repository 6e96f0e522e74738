"""W3C PROV: run documents, promotion bundles, merging and the PROV-CONSTRAINTS checker."""
