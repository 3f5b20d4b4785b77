"""systemd over D-Bus: the unit model for one container; start, stop, list and watch units.

The only part of pycontainers that talks to systemd. Layers, outside in:

- ``backend.SystemdBackend``: containers as units (start/stop/restart/kill/list/events),
  touching only units pycontainers created; what the reconciler uses.
- ``model``: ``UnitSpec`` (one container) and the pure ``render_properties``.
- ``manager.SystemdManager``: a typed async client of org.freedesktop.systemd1.Manager
  (jobs waited for through ``JobRemoved``, state changes through signals).
- ``bus``: which bus (system, or the user's manager for rootless mode) and connecting.
- ``wire``: the one module importing the D-Bus library (dbus-next).
- ``errors``: the ``UnitError`` family.
"""
