"""numpy twins of the jitted code in ``convtool._jit``."""
