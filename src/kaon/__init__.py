"""Kaon: a self-hosted customer data platform that speaks mParticle and Segment."""

__version__ = "0.1.0"
