cwlVersion: v1.2
class: CommandLineTool
doc: Upper-case one word (one job per word when scattered).
requirements:
  ShellCommandRequirement: {}
  ResourceRequirement: {coresMin: 1, ramMin: 64}
inputs:
  word: string
arguments:
  - {valueFrom: "echo $(inputs.word) | tr a-z A-Z", shellQuote: false}
stdout: $(inputs.word).txt
outputs:
  out: stdout
