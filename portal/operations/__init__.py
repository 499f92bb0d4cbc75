"""Running an installation: first start, reference data, backups, retention."""
