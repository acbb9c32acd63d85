"""Leaf package: FIDs, layout math, records, errors and the wire errno table, names, logging.

Imports nothing from lustrepy outside itself, and does no I/O beyond logging set-up.
"""
