"""Filtering images larger than memory, band by band."""
