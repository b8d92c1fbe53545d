"""Drivers and vehicles as struct-of-arrays, their archetypes and their mobility."""
