"""downtime package."""
