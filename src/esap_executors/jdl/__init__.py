"""The JDL front: gLite/DIRAC job descriptions run unchanged on the sites of the catalogue.

parse (document.py, lexer.py) -> check attributes (attributes.py) -> translate into the
core's JobSpec (translate.py, arguments.py, parametric.py) -> choose the site by
Requirements/Rank (placement.py) -> submit in one batch, then bring the output sandbox
back (sandbox.py, records.py, cli.py). cwl.py writes an equivalent CWL tool.
"""

from .translate import JdlDescription, JdlJob, load, translate

__all__ = ["JdlDescription", "JdlJob", "load", "translate"]
