// The machine a benchmark ran on, as its result file records it (bench/results/*.json): figures are ratios measured
// in one run, but the machine says whether two result files can be compared at all. Not a benchmark itself.
import { cpus, totalmem } from "node:os";

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  openssl: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    openssl: process.versions.openssl,
  };
}
