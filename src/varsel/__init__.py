"""varsel: reach every business in an area with preventive security information."""

__version__ = "0.1.0"
