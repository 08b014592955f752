"""modelhub's built-in plugins, installed as the ``modelhub.plugins`` package.

Each is meant to be registered through the ``modelhub`` entry-point group exactly like a third-party
plugin; none is shipped yet.
"""
