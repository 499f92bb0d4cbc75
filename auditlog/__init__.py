"""The tamper-evident audit log: the one writer, its entry format, the Merkle tree, signed
checkpoints,
the stored log's operation and the offline verifier (`python -m auditlog.verify`). No Flask here."""
