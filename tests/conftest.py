"""Shared test set-up."""

import numpy as np

# BLAST-Lite 1.1.0 (the wear oracle) still calls numpy.trapz, removed in NumPy 2.4; the
# function it needs lives on as numpy.trapezoid. Restore the alias for the oracle only.
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid
