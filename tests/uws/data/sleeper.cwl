cwlVersion: v1.2
class: CommandLineTool
doc: "One SLURM job that sleeps, then writes a file."
baseCommand: [sh, -c]
arguments: ["sleep $(inputs.seconds); echo slept $(inputs.seconds) > slept.txt"]
inputs:
  seconds: int
outputs:
  slept:
    type: File
    outputBinding: {glob: slept.txt}
