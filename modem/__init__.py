"""marslink modem: pure DSP for the Mars surface-to-orbit links (numpy in, numpy out)."""

__version__ = "0.1.0"
