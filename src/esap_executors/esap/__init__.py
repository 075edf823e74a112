"""ESAP and the OSSR as software sources: catalogue client, entry -> CWL tool, facilities -> sites.

entries     the catalogue's entries and facilities, as one shape for every source
codemeta    a codemeta.json read into an entry; OSSR validity through eossr
gateway     the ESAP API gateway's IDA and batch searches, with their quirks
ossr        the OSSR: Zenodo records of the community escape2020 and their codemeta.json
catalogue   both sources together; an ESAP 500 falls back to the OSSR
cwl_tool    an entry as a CWL CommandLineTool (papermill for notebooks)
publish     the tools of a whole catalogue written to a folder
facilities  ESAP facilities as sites.yaml entries for the backends that can serve them
cli         `esap catalogue ...` and `esap sites import`
"""
