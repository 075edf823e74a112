cwlVersion: v1.2
class: Workflow
doc: A scatter and a gather step (no GPU, no container).
requirements:
  ScatterFeatureRequirement: {}
inputs:
  words:
    type: string[]
    default: [one, two, three]
outputs:
  joined:
    type: File
    outputSource: join/out
steps:
  say:
    scatter: message
    in: {message: words}
    out: [out]
    run: echo.cwl
  join:
    in: {files: say/out}
    out: [out]
    run:
      class: CommandLineTool
      baseCommand: cat
      inputs:
        files: {type: "File[]", inputBinding: {position: 1}}
      stdout: joined.txt
      outputs:
        out: stdout
