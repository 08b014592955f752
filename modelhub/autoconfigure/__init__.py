"""Auto-configure: search for a load_config that loads, one real try after another."""
