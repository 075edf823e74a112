cwlVersion: v1.2
class: CommandLineTool
doc: >
  Concatenates the words and says whether a GPU was granted. The GPU is a hint: on a
  catalogue where no site declares `attributes: {GPUs: N}` the step runs on CPU.
$namespaces:
  cwltool: http://commonwl.org/cwltool#
requirements:
  ShellCommandRequirement: {}
  InlineJavascriptRequirement: {}
hints:
  cwltool:CUDARequirement:
    cudaVersionMin: "11.0"
    cudaComputeCapability: "3.0"
    cudaDeviceCountMin: 1
inputs:
  files: File[]
arguments:
  - valueFrom: >
      cat $(inputs.files.map(function(f){return f.path}).join(" ")) &&
      if [ -n "$CUDA_VISIBLE_DEVICES" ]; then echo "device: gpu $CUDA_VISIBLE_DEVICES"; else echo "device: cpu"; fi
    shellQuote: false
stdout: summary.txt
outputs:
  out: stdout
