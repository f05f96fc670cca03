"""Each source's class by its input's name (the CAVATICA source lives in a module of its own)."""

from gensvc.merge.cavatica_source import CavaticaSource
from gensvc.merge.sources import BravoSource, CgiSource, OpenCravatSource

SOURCE_TYPES = {"opencravat": OpenCravatSource, "bravo": BravoSource, "cgi": CgiSource, "cavatica": CavaticaSource}
