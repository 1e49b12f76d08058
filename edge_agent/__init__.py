"""In-car automated licence plate reader: capture -> recognise -> match -> store -> alert and sync."""

__version__ = "0.1.0"
