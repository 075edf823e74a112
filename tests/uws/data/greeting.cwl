cwlVersion: v1.2
class: Workflow
doc: "Two steps, each a SLURM job: say the message, then shout it."
inputs:
  message: string
outputs:
  greeting:
    type: File
    outputSource: shout/out
steps:
  say:
    run:
      class: CommandLineTool
      baseCommand: echo
      inputs:
        message: {type: string, inputBinding: {position: 1}}
      outputs:
        out: {type: stdout}
      stdout: said.txt
    in: {message: message}
    out: [out]
  shout:
    run:
      class: CommandLineTool
      baseCommand: [tr, a-z, A-Z]
      stdin: $(inputs.text.path)
      inputs:
        text: File
      outputs:
        out: {type: stdout}
      stdout: greeting.txt
    in: {text: say/out}
    out: [out]
