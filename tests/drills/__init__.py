"""The fault drills."""
