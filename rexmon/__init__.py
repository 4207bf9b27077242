"""rexmon: the CLI and the wiring."""
