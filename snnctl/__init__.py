"""snnctl: train and study Diehl & Cook (2015) spiking networks on images."""

__version__ = "0.1.0"
