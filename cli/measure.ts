// `provenant measure`: the SEV-SNP launch digest of a direct-boot guest, computed offline from the files QEMU would
// boot (DESIGN §11), as virtee/sev-snp-measure `--mode snp` computes it; with --policy-snippet, the verifier policy
// fragment that pins it. Flags follow sev-snp-measure's where they exist (numbers as Python's int(x, 0) reads them).
import { basename, resolve } from "node:path";

import { defineCommand, integerOption, requiredOption, type Command } from "../lib/cli/index.ts";
import { UsageError } from "../lib/errors.ts";
import { isPinName, MAX_MEASUREMENT_NAME } from "../lib/snp/index.ts";
import {
  CPU_SIGS,
  MAX_VCPUS,
  VMM_TYPES,
  cpuSig,
  cpuSigOf,
  measureLaunchFiles,
  toPolicySnippet,
  type VmmType,
} from "../lib/measure/index.ts";

const USAGE =
  "provenant measure --ovmf <OVMF.fd> [--kernel <vmlinuz> [--initrd <img>] [--append <cmdline>]] --vcpus <n> " +
  "(--vcpu-type <name> | --vcpu-sig <n> | --vcpu-family <n> --vcpu-model <n> --vcpu-stepping <n>) " +
  "[--vmm-type qemu|ec2|gce] [--guest-features <n>] [--snp-ovmf-hash <96 hex>] [--policy-snippet [--name <text>]] [--json]";

/**
 * An integer as Python's int(text, 0) reads it (sev-snp-measure's --guest-features and --vcpu-sig): 0x…, 0o…,
 * 0b… or decimal without leading zeros, underscores allowed between digits.
 */
export function parseAutoBaseInt(text: string, flag: string, max: bigint): bigint {
  const t = text.trim();
  const ok = /^\+?(0[xX](_?[0-9a-fA-F])+|0[oO](_?[0-7])+|0[bB](_?[01])+|[1-9](_?[0-9])*|0(_?0)*)$/.test(t);
  const value = ok ? BigInt(t.replace(/^\+/, "").replace(/_/g, "")) : -1n;
  if (value < 0n || value > max) {
    throw new UsageError(
      `--${flag} must be an integer (0x… for hex) from 0 to 0x${max.toString(16)}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function vmmTypeOf(value: string): VmmType {
  const vmm = value.toLowerCase();
  if (!(VMM_TYPES as readonly string[]).includes(vmm)) {
    throw new UsageError(`--vmm-type must be one of ${VMM_TYPES.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return vmm as VmmType;
}

interface VcpuChoice {
  sig: number;
  /** The QEMU model name when --vcpu-type chose it. */
  type?: string;
}

/** Exactly one way of naming the vCPU; none at all only where the VMM ignores the signature (ec2, gce). */
function vcpuChoice(
  values: { type?: string; sig?: string; family?: string; model?: string; stepping?: string },
  vmm: VmmType,
): VcpuChoice {
  const byFamily = [values.family, values.model, values.stepping].some((v) => v !== undefined);
  const ways = [values.type !== undefined, values.sig !== undefined, byFamily].filter(Boolean).length;
  if (ways > 1)
    throw new UsageError(`give one of --vcpu-type, --vcpu-sig or --vcpu-family/model/stepping\nusage: ${USAGE}`);
  if (values.type !== undefined) {
    const found = cpuSigOf(values.type);
    if (found === undefined) {
      throw new UsageError(`unknown --vcpu-type ${JSON.stringify(values.type)} (${[...CPU_SIGS.keys()].join(", ")})`);
    }
    return { sig: found.sig, type: found.name };
  }
  if (values.sig !== undefined) return { sig: Number(parseAutoBaseInt(values.sig, "vcpu-sig", 0xffff_ffffn)) };
  if (byFamily) {
    const family = integerOption(requiredOption(values.family, "vcpu-family", USAGE), "vcpu-family", { max: 0x10e });
    const model = integerOption(requiredOption(values.model, "vcpu-model", USAGE), "vcpu-model", { max: 0xff });
    const stepping = integerOption(requiredOption(values.stepping, "vcpu-stepping", USAGE), "vcpu-stepping", {
      max: 0xf,
    });
    return { sig: cpuSig(family!, model!, stepping!) };
  }
  // sev-snp-measure lets EC2 and GCE go without a vCPU type: their VMSAs do not carry the signature.
  if (vmm !== "qemu") return { sig: 0 };
  throw new UsageError(`missing --vcpu-type, --vcpu-sig or --vcpu-family/model/stepping\nusage: ${USAGE}`);
}

/**
 * A default name for the policy entry: the files, the job digest the command line names, the vCPUs and the VMM. Made
 * a name the policy reader takes (lib/snp isPinName) whatever the file names: control characters become "?", and a
 * name longer than MAX_MEASUREMENT_NAME is cut, with "…".
 */
export function defaultMeasurementName(input: {
  ovmf: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  vcpus: number;
  vcpu: VcpuChoice;
  vmm: VmmType;
}): string {
  const files = [input.ovmf, input.kernel, input.initrd].filter((f) => f !== undefined).map((f) => basename(f));
  const job = /(?:^|\s)provenant\.job=sha256:([0-9a-f]{64})(?:\s|$)/.exec(input.append ?? "")?.[1];
  const cpu = input.vcpu.type ?? `sig 0x${input.vcpu.sig.toString(16)}`;
  const name = `${files.join(" + ")}${job === undefined ? "" : ` (job sha256:${job.slice(0, 12)}…)`}, ${input.vcpus} vCPU ${cpu}, ${input.vmm}`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is replaced
  const printable = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  if (printable.length <= MAX_MEASUREMENT_NAME) return printable;
  // Not between the halves of a surrogate pair: a lone surrogate is refused by the strict JSON reader (lib/json).
  const high = printable.charCodeAt(MAX_MEASUREMENT_NAME - 2);
  const cut = high >= 0xd800 && high <= 0xdbff ? MAX_MEASUREMENT_NAME - 2 : MAX_MEASUREMENT_NAME - 1;
  return `${printable.slice(0, cut)}…`;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

const measure = defineCommand({
  path: ["measure"],
  summary: "compute the SEV-SNP launch measurement of a direct-boot guest (OVMF, kernel, initrd, cmdline, vCPUs)",
  usage: USAGE,
  options: {
    ovmf: { type: "string" },
    kernel: { type: "string" },
    initrd: { type: "string" },
    append: { type: "string" },
    vcpus: { type: "string" },
    "vcpu-type": { type: "string" },
    "vcpu-sig": { type: "string" },
    "vcpu-family": { type: "string" },
    "vcpu-model": { type: "string" },
    "vcpu-stepping": { type: "string" },
    "vmm-type": { type: "string", default: "qemu" },
    "guest-features": { type: "string", default: "0x1" },
    "snp-ovmf-hash": { type: "string" },
    "policy-snippet": { type: "boolean" },
    name: { type: "string" },
  },
  async run({ values, json, io }) {
    const ovmf = requiredOption(values.ovmf, "ovmf", USAGE);
    const vcpus = integerOption(requiredOption(values.vcpus, "vcpus", USAGE), "vcpus", { min: 1, max: MAX_VCPUS })!;
    const vmm = vmmTypeOf(values["vmm-type"]);
    const vcpu = vcpuChoice(
      {
        ...(values["vcpu-type"] === undefined ? {} : { type: values["vcpu-type"] }),
        ...(values["vcpu-sig"] === undefined ? {} : { sig: values["vcpu-sig"] }),
        ...(values["vcpu-family"] === undefined ? {} : { family: values["vcpu-family"] }),
        ...(values["vcpu-model"] === undefined ? {} : { model: values["vcpu-model"] }),
        ...(values["vcpu-stepping"] === undefined ? {} : { stepping: values["vcpu-stepping"] }),
      },
      vmm,
    );
    const guestFeatures = parseAutoBaseInt(values["guest-features"], "guest-features", 0xffff_ffff_ffff_ffffn);
    // As sev-snp-measure: an empty --kernel or --initrd is no file at all.
    const kernel = values.kernel === "" ? undefined : values.kernel;
    const initrd = values.initrd === "" ? undefined : values.initrd;
    if (kernel === undefined && (initrd !== undefined || (values.append ?? "") !== "")) {
      throw new UsageError(`--initrd and --append need --kernel\nusage: ${USAGE}`);
    }
    if (values.name !== undefined && values["policy-snippet"] !== true) {
      throw new UsageError(`--name names the --policy-snippet entry\nusage: ${USAGE}`);
    }
    // Refused now rather than printed into a snippet the verifier would refuse (POLICY_INVALID).
    if (values.name !== undefined) {
      const shown = JSON.stringify(values.name.length > 40 ? `${values.name.slice(0, 40)}…` : values.name);
      if (!isPinName(values.name))
        throw new UsageError(
          `--name must be 1 to ${MAX_MEASUREMENT_NAME} printable characters, not a <…> placeholder, got ${shown}`,
        );
    }
    const at = (path: string) => resolve(io.cwd, path);
    const result = await measureLaunchFiles({
      ovmf: at(ovmf),
      vcpus,
      vcpuSig: vcpu.sig,
      vmm,
      guestFeatures,
      ...(kernel === undefined ? {} : { kernel: at(kernel) }),
      ...(kernel === undefined || initrd === undefined ? {} : { initrd: at(initrd) }),
      ...(kernel === undefined || values.append === undefined ? {} : { append: values.append }),
      ...(values["snp-ovmf-hash"] === undefined ? {} : { snpOvmfHash: values["snp-ovmf-hash"] }),
    });
    const measurement = hex(result.measurement);
    const snippet =
      values["policy-snippet"] === true
        ? toPolicySnippet(
            measurement,
            values.name ??
              defaultMeasurementName({
                ovmf,
                vcpus,
                vcpu,
                vmm,
                ...(kernel === undefined ? {} : { kernel }),
                ...(kernel === undefined || initrd === undefined ? {} : { initrd }),
                ...(kernel === undefined || values.append === undefined ? {} : { append: values.append }),
              }),
          )
        : undefined;
    const fields: Record<string, unknown> = {
      measurement,
      ovmfHash: hex(result.ovmfHash),
      vcpus,
      vcpuSig: `0x${vcpu.sig.toString(16)}`,
      vcpuType: vcpu.type ?? null,
      vmmType: vmm,
      guestFeatures: `0x${guestFeatures.toString(16)}`,
      kernelHashes:
        result.kernelHashes === undefined
          ? null
          : {
              kernel: hex(result.kernelHashes.kernel),
              initrd: hex(result.kernelHashes.initrd),
              cmdline: hex(result.kernelHashes.cmdline),
            },
    };
    if (snippet !== undefined) fields.policySnippet = snippet;
    const text = snippet === undefined ? measurement : JSON.stringify(snippet, null, 2);
    return { ok: true, fields, text: json ? "" : text };
  },
});

export const commands: readonly Command[] = [measure];
