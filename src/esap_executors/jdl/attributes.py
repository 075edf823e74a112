"""Every attribute of the JDL reference: implemented here, or refused with the reason."""

from __future__ import annotations

from ..formats.printable import shortened
from .document import JdlDocument

IMPLEMENTED = (
    "Type", "JobType", "JobName", "Executable", "Arguments", "StdInput", "StdOutput", "StdError",
    "InputSandbox", "InputSandboxBaseURI", "OutputSandbox", "OutputSandboxDestURI",
    "OutputSandboxBaseDestURI", "Environment", "Requirements", "Rank", "RetryCount",
    "ShallowRetryCount", "CpuNumber", "SMPGranularity", "HostNumber", "WholeNodes",
    "VirtualOrganisation", "PerusalFileEnable", "PerusalTimeInterval", "Parameters",
    "ParameterStart", "ParameterStep", "ParameterFactor", "CPUTime", "Site", "BannedSites",
    "Platform", "ExpiryTime", "Prologue", "PrologueArguments", "Epilogue", "EpilogueArguments",
    # esap's own: the container image a job runs in (a name of the site's image map, or where
    # the site runs a step's own image, a registry reference); for JobType = "Interactive",
    # the software the session opens
    "Image",
)

REJECTED = {
    "MyProxyServer": "x509 proxy renewal; esap jobs authenticate with the platform's OIDC tokens",
    "InputData": "logical file names need a file catalogue; ship the files in InputSandbox",
    "DataRequirements": "data-aware matchmaking needs a file catalogue; use Requirements",
    "OutputData": "registration in a file catalogue; use OutputSandboxDestURI",
    "OutputSE": "storage elements; use OutputSandboxDestURI",
    "OutputPath": "storage elements; use OutputSandboxBaseDestURI",
    "Tags": "DIRAC tags; use Requirements on the site's attributes",
    "PerusalFilesDestURI": "perusal files come back next to the output sandbox",
}

# Type / JobType values
TYPES = {"job": "Job", "parametric": "Parametric"}
REJECTED_TYPES = {"dag": "DAG", "collection": "Collection"}
JOB_TYPES = {"normal": "Normal", "parametric": "Parametric", "interactive": "Interactive"}
REJECTED_JOB_TYPES = {
    "mpich": "multi-node MPI jobs (use CpuNumber for a multi-core job on one node)",
    "checkpointable": "checkpointing",
    "partitionable": "partitionable jobs",
}
INTERACTIVE_MESSAGE = (
    'JobType = "Interactive" opens the software named by Image (e.g. Image = "jupyter"), on a site '
    "that runs interactive jobs; it takes no Executable"
)

MAX_UNKNOWN_WARNINGS = 10  # then one line with how many more

_CANONICAL = {name.lower(): name for name in (*IMPLEMENTED, *REJECTED)}


def canonical(name: str) -> str | None:
    return _CANONICAL.get(name.lower())


def check_attributes(doc: JdlDocument) -> list[str]:
    """Raise on a refused attribute; return warnings for unknown ones (JDL is extensible)."""
    warnings = []
    unknown = 0
    for name in doc.names():
        known = canonical(name)
        if known is None:
            unknown += 1
            if unknown <= MAX_UNKNOWN_WARNINGS:
                line = doc.line_of(name)
                warnings.append(f"{doc.source}:{line}: unknown attribute {shortened(name, 60)} ignored")
        elif known in REJECTED:
            raise doc.bad(name, f"not supported: {known} ({REJECTED[known]})")
    if unknown > MAX_UNKNOWN_WARNINGS:
        warnings.append(f"{doc.source}: {unknown - MAX_UNKNOWN_WARNINGS} more unknown attributes ignored")
    return warnings
