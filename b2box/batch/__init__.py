"""Batch backends: send prepared jobs to a batch system and follow them until they end."""
