"""Sketches: MinHash signatures, LSH bands and band keys, the compiled fingerprint kernel, the fingerprint stage."""
