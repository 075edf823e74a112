#!/usr/bin/env esap-cwltool
# Example for esap-cwltool: a scatter, a GPU-hinted step that falls back to CPU where no
# site has GPUs, and a containerised step whose image comes from the site's image map.
#   esap-cwltool --enable-ext --esap-sites sites.yaml --site slurm-local pipeline.cwl inputs.yml
cwlVersion: v1.2
class: Workflow
$namespaces:
  esap: https://w3id.org/esap/cwl#
requirements:
  ScatterFeatureRequirement: {}
  MultipleInputFeatureRequirement: {}
inputs:
  words: string[]
outputs:
  shouted:
    type: File[]
    outputSource: shout/out
  summary:
    type: File
    outputSource: count/out
  stamped:
    type: File
    outputSource: stamp/out
steps:
  shout:
    run: tools/shout.cwl
    scatter: word
    in:
      word: words
    out: [out]
  count:
    run: tools/gpu-count.cwl
    in:
      files: shout/out
    out: [out]
  stamp:
    run: tools/stamp.cwl
    in:
      summary: count/out
    out: [out]
