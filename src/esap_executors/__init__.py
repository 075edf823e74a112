"""esap-executors: run batch work of CWL, Snakemake and JDL fronts on ESCAPE computing sites."""

__version__ = "0.1.0"
