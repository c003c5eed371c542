"""Capture flow: event files -> warehouse `events` schema (Segment shape)."""
