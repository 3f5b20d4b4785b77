"""systemd over D-Bus: the unit model for one container; start, stop, list and watch units."""
