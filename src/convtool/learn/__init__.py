"""Learning the kernel behind a filter from image pairs: fit, pairs, least squares, gradient
descent and the figures of the fit."""
