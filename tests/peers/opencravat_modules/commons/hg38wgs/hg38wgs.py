"""Reference-sequence stub: the converter asks it for REF only when an input omits it."""


class CravatWgs:
    def setup(self):
        pass

    def get_bases(self, chrom, start, end=None):
        end = start if end is None else end
        return "N" * (int(end) - int(start) + 1)
