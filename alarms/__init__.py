"""Alarms: ranges, rules, the pure engine, notification delivery."""
