"""Demo helpers: simulators and fake commands that speak the real formats."""
