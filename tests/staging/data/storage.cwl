#!/usr/bin/env cwl-runner
# Inputs by storage URL (a File by https://, a Directory by davs://), two steps, outputs uploaded.
cwlVersion: v1.2
class: Workflow
inputs:
  table: File
  folder: Directory
outputs:
  combined: {type: File, outputSource: combine/combined}
  size: {type: File, outputSource: measure/size}
steps:
  combine:
    in: {table: table, folder: folder}
    out: [combined]
    run:
      class: CommandLineTool
      inputs:
        table: {type: File, inputBinding: {position: 1}}
        folder: {type: Directory, inputBinding: {position: 2}}
      baseCommand: [sh, -c, 'cat "$0" && ls "$1" && cat "$1"/*.dat "$1"/sub/b.dat', ]
      stdout: combined.txt
      outputs:
        combined: {type: stdout}
  measure:
    in: {text: combine/combined}
    out: [size]
    run:
      class: CommandLineTool
      inputs:
        text: {type: File, inputBinding: {position: 1}}
      baseCommand: [wc, -l]
      stdout: size.txt
      outputs:
        size: {type: stdout}
