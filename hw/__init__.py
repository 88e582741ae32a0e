"""Radios: the ADALM-PLUTO (PlutoSDR) front end and the virtual Pluto used for hardware-free runs."""
