"""Promotion: certificate, release description, STAC, DCAT, the journal and the atomic publish."""
