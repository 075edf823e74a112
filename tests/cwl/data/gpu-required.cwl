cwlVersion: v1.2
class: CommandLineTool
$namespaces:
  cwltool: http://commonwl.org/cwltool#
requirements:
  cwltool:CUDARequirement:
    cudaVersionMin: "11.0"
    cudaComputeCapability: "3.0"
    cudaDeviceCountMin: 1
baseCommand: nvidia-smi
inputs: []
outputs: []
