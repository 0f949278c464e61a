"""Channel adapters: each converts platform input to ``Inbound`` and ``Reply`` back. Nothing else."""
