"""CWL front: `esap-cwltool`, cwltool with every CommandLineTool step run as a job on a site."""
