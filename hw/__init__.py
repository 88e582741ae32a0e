"""Radios and recordings.

The ADALM-PLUTO (PlutoSDR) through pyadi-iio (:mod:`hw.pluto`, behind the :mod:`hw.radio`
interface), the virtual Pluto that speaks libiio's network protocol for hardware-free runs
(:mod:`hw.virtual_pluto`), and SigMF captures: recording, replay, import and plots
(:mod:`hw.captures`, :mod:`hw.capture_decode`, :mod:`hw.capture_plots`).
"""
