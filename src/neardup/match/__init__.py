"""Matching: paragraph weights, candidate pairs, exact scores and the hold rule, evidence, repetition."""
