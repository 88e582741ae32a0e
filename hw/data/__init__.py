"""Package data of :mod:`hw`: the ADALM-PLUTO IIO context the virtual Pluto presents."""
