"""Desired state: spec models, sources (directory, git), diff -> plan -> apply, daemon, CLI."""
