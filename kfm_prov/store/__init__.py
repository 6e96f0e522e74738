"""What is on disk and how it is found: digests, raw zone, lineage index, evidence, rebuild."""
