"""Fuzz targets of the parser and the chunked decoder (atheris); see ``make fuzz``."""
