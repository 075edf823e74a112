cwlVersion: v1.2
class: Workflow
doc: The second step fails (exit code 3).
inputs: []
outputs:
  never:
    type: File
    outputSource: broken/out
steps:
  fine:
    run:
      class: CommandLineTool
      baseCommand: [echo, fine]
      inputs: []
      outputs:
        out: {type: stdout}
    in: []
    out: [out]
  broken:
    run:
      class: CommandLineTool
      baseCommand: [sh, -c, "echo failing on purpose >&2; exit 3"]
      inputs:
        after: File
      outputs:
        out: {type: stdout}
    in: {after: fine/out}
    out: [out]
