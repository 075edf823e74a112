cwlVersion: v1.2
class: Workflow
doc: Two steps in a row; the second one is slow enough to kill the executor while it runs.
inputs:
  message: string
outputs:
  result:
    type: File
    outputSource: slow/out
steps:
  fast:
    in: {message: message}
    out: [out]
    run:
      class: CommandLineTool
      baseCommand: echo
      inputs:
        message: {type: string, inputBinding: {position: 1}}
      stdout: fast.txt
      outputs:
        out: stdout
  slow:
    in: {infile: fast/out}
    out: [out]
    run:
      class: CommandLineTool
      requirements:
        ShellCommandRequirement: {}
      inputs:
        infile: File
      arguments:
        - {valueFrom: "sleep 25 && cat $(inputs.infile.path) && echo slow-done", shellQuote: false}
      stdout: slow.txt
      outputs:
        out: stdout
