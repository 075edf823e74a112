cwlVersion: v1.2
class: CommandLineTool
doc: >
  Runs in the image `esap-example` (a hint: the site's image map resolves it to a local
  image or SIF; nothing is pulled). Appends the image's stamp to the summary.
requirements:
  ShellCommandRequirement: {}
hints:
  DockerRequirement:
    dockerPull: esap-example
inputs:
  summary: File
arguments:
  - valueFrom: >
      cat $(inputs.summary.path) && (cat /esap-example-stamp 2>/dev/null || echo "stamp: none (no container)")
    shellQuote: false
stdout: stamped.txt
outputs:
  out: stdout
