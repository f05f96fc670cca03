"""One call of an operation: service, operation, named files, params, log; from a Snakemake
rule's object (`Call.from_snakemake`) or from the command line (`gensvc.flags.call_from_argv`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gensvc import schema
from gensvc.errors import UsageError


@dataclass
class Call:
    service: str
    operation: str
    input: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    log: str | None = None

    @classmethod
    def from_snakemake(cls, service: str, operation: str, smk) -> "Call":
        log_files = list(smk.log)
        return cls(
            service,
            operation,
            input=_named(smk.input, "input", service, operation),
            output=_named(smk.output, "output", service, operation),
            params=dict(smk.params.items()),
            log=str(log_files[0]) if log_files else None,
        )

    def as_document(self) -> dict:
        return {"input": self.input, "output": self.output, "params": self.params}


def _named(files, kind: str, service: str, operation: str) -> dict:
    named = {name: (list(map(str, v)) if isinstance(v, list) else str(v)) for name, v in files.items()}
    given = {path for v in named.values() for path in (v if isinstance(v, list) else [v])}
    unnamed = [str(f) for f in files if str(f) not in given]
    if unnamed:
        spec = schema.load(service, operation)["properties"][kind]
        names, required = spec.get("properties", {}), spec.get("required", [])
        if not names:
            raise UsageError(f"{service} {operation} takes no {kind} files, but the rule gives {unnamed[0]!r}",
                             hint=f"remove it from the rule's {kind}:")
        listing = ", ".join(f"{n} (required)" if n in required else n for n in names)
        example = (required or list(names))[0]
        raise UsageError(f"unnamed {kind} file {unnamed[0]!r}: {service} {operation} takes {kind} {listing}",
                         hint=f"name it, e.g. {kind}: {example}={unnamed[0]!r}")
    return named
