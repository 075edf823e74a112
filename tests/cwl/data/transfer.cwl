cwlVersion: v1.2
class: CommandLineTool
doc: Reads a File and a Directory, writes several files in a directory and records where it ran.
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: work.sh
        entry: |
          mkdir results
          pwd -P > results/where.txt
          echo "$HOME" > results/home.txt
          cat "$1" > results/copy.txt
          ls "$2" > results/listing.txt
          here=`pwd -P`
          echo "done in $here"
baseCommand: [sh, work.sh]
inputs:
  data: {type: File, inputBinding: {position: 1}}
  folder: {type: Directory, inputBinding: {position: 2}}
stdout: log.txt
outputs:
  results: {type: Directory, outputBinding: {glob: results}}
  texts: {type: 'File[]', outputBinding: {glob: 'results/*.txt'}}
  log: stdout
