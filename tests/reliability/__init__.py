"""Fault tests: processes killed mid-flow and mid-send, duplicate deliveries, platform and
database trouble, clock jumps, interrupted long work and load (see docs/guarantees.md)."""
