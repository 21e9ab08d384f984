"""Test support: waiting with a deadline, and a real `kaon serve` subprocess."""
