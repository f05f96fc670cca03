"""Tests against real third-party servers run on loopback (see README.md)."""
