"""Text: the matching form (normalised, junk blanked), paragraphs, and word shingles hashed to 32 bits."""
