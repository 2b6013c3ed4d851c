"""Filtering pictures with a kernel chain: the float chain, the fused integer path, clipping."""
