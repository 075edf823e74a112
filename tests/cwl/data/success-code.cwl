cwlVersion: v1.2
class: CommandLineTool
doc: Exits 3, which its successCodes call a success.
baseCommand: [sh, -c, "echo three > out.txt; exit 3"]
successCodes: [3]
inputs: []
outputs:
  out:
    type: File
    outputBinding: {glob: out.txt}
