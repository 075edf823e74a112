cwlVersion: v1.2
class: Workflow
doc: A scatter, then a step in its own image (esap-test, whose root holds the file /esap-test).
requirements:
  ScatterFeatureRequirement: {}
inputs:
  words: {type: "string[]"}
outputs:
  joined: {type: File, outputSource: join/out}
steps:
  say:
    scatter: message
    in: {message: words}
    out: [out]
    run: ../../cwl/data/echo.cwl
  join:
    in: {files: say/out}
    out: [out]
    run:
      class: CommandLineTool
      requirements:
        DockerRequirement: {dockerPull: esap-test}
      baseCommand: [sh, -c, 'cat /esap-test "$@"', join]
      inputs:
        files: {type: "File[]", inputBinding: {position: 1}}
      stdout: joined.txt
      outputs:
        out: stdout
