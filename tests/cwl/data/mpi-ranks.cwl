#!/usr/bin/env cwl-runner
# Three MPI ranks; the launcher comes from --mpi-config-file (srun on SLURM).
cwlVersion: v1.2
class: CommandLineTool
$namespaces:
  cwltool: "http://commonwl.org/cwltool#"
requirements:
  cwltool:MPIRequirement:
    processes: 3
baseCommand: [sh, -c, 'echo "rank $SLURM_PROCID of $SLURM_NTASKS"']
inputs: []
outputs:
  ranks:
    type: stdout
stdout: ranks.txt
