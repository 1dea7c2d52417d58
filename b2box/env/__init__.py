"""Environments: from a task's settings to the command that runs its job in a container."""
