"""One parser, and its formatter where one exists, per format that crosses the edge of the core.

- durations: SLURM's time forms (sbatch --time, scontrol limits, sacct Elapsed/TotalCPU), the
  short forms of esap (30s, 10m, 2h, 1d) and slurmrestd's duration structs;
- memory: sizes as users and SLURM's --mem write them, and sacct's MaxRSS;
- timestamps: sacct's local ISO times and slurmrestd's epoch numbers;
- slurm_numbers: slurmrestd's plain or {set, infinite, number} integers;
- hostlists: SLURM node lists (python-hostlist) and index ranges of job arrays;
- urls: the scheme of a location (a URL or a local path).

A value that does not parse raises BadInput naming the field it came from.
"""
