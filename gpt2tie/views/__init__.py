"""Readers of finished reports: explain, check and diff are views over one or two reports."""
