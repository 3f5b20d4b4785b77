"""Test harness: real systemd sandbox, real registry, fixture images, leak guard."""
