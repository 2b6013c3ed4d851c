"""Images and matrix files in and out, and the pixel policy."""
