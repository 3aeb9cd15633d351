"""Peers' files in and out: each module reads one mapper's formats into
mapcert instances and mappings, and writes mapcert's optimum back in that
mapper's format.  ``cli/peers.py`` lists the formats by name.
"""
