"""Dedup as pure stages, and their executors: on threads on this machine, or on Apache Spark."""
