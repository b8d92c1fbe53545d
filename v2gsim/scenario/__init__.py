"""Scenario files: loading, validation and the scenario schema."""
