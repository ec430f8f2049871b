"""Ties while a model trains: a guard for custom loops and a callback for the HF Trainer."""
