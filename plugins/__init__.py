"""modelhub's built-in plugins. They are registered through the ``modelhub`` entry-point group exactly
like third-party plugins (see setup.cfg), and installed as the ``modelhub.plugins`` package."""
