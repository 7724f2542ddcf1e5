// The explorer page: look a model up by hash, by dropping its files (OMS root digest computed here), or check a
// dropped provenance bundle against the chain. Routes: #/model/<hash>. Networks and the verifier come from
// /config.json (the verifier also from ?verifier= or the header field); next to each record, what it attests
// (attests.ts: its bundle from the verifier, re-verified here against the chain before it is shown).
import { sha256 as sha256Sync } from "@noble/hashes/sha2.js";

import { connectRegistryClient, isHash, type RegistryClient, type RegistryRecord } from "../../offchain/client/core.ts";
import { MAX_BUNDLE_BYTES } from "../../lib/bundle/core.ts";
import { toHex } from "../../lib/encoding/index.ts";
import {
  fillAttests,
  installServingSetting,
  installVerifierSetting,
  servingUrlFrom,
  verdictRoot,
  verifierUrlFrom,
} from "./attests.ts";
import { chainChecks, checkBundle, BUNDLE_MEDIA_TYPE, MANIFEST_KIND_LABELS, type BundleCheck } from "./bundle.ts";
import { installReceiptPanel } from "./receipt-panel.ts";
import { hashModelFiles, toModelFiles } from "./oms.ts";

interface NetworkConfig {
  name: string;
  label: string;
  rpcUrl: string;
  chainId: number;
  address: string | null;
  logRange: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const networkSelect = $<HTMLSelectElement>("network");
const hashInput = $<HTMLInputElement>("hash");
const resultEl = $<HTMLElement>("result");
const errorEl = $<HTMLElement>("error");
const progressEl = $<HTMLElement>("progress");

let networks: NetworkConfig[] = [];
let client: { network: string; client: RegistryClient } | null = null;
/** The verifier whose bundles and policies are shown next to records; null: none set. */
let verifierUrl: string | null = null;
/** The `provenant serve` API whose usage statements are shown beside serving records; null: none set. */
let servingUrl: string | null = null;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function showError(code: string, message: string): void {
  errorEl.hidden = false;
  errorEl.dataset.code = code;
  errorEl.innerHTML = `<strong>${escapeHtml(code)}</strong>: ${escapeHtml(message)}`;
}

function clearError(): void {
  errorEl.hidden = true;
  delete errorEl.dataset.code;
}

function setStatus(state: string): void {
  document.body.dataset.state = state;
}

function progress(done: number, total: number, label: string): void {
  progressEl.hidden = false;
  const fraction = total > 0 ? done / total : 1;
  $("progress-bar").style.width = `${(fraction * 100).toFixed(1)}%`;
  $("progress-text").textContent = `${label} ${(done / 1048576).toFixed(1)} / ${(total / 1048576).toFixed(1)} MiB`;
}

function errorOf(error: unknown): { code: string; message: string } {
  const e = error as { code?: unknown; message?: unknown };
  return {
    code: typeof e.code === "string" ? e.code : "INTERNAL",
    message: typeof e.message === "string" ? e.message : String(error),
  };
}

async function getClient(): Promise<RegistryClient> {
  const n = networks.find((x) => x.name === networkSelect.value);
  if (n === undefined) throw Object.assign(new Error("no network configured"), { code: "REGISTRY_NOT_FOUND" });
  if (client?.network === n.name) return client.client;
  if (n.address === null) {
    throw Object.assign(new Error(`no registry is deployed on ${n.label} in this explorer's config`), {
      code: "REGISTRY_NOT_FOUND",
    });
  }
  const c = await connectRegistryClient({
    rpcUrl: new URL(n.rpcUrl, location.href).href,
    address: n.address,
    chainId: n.chainId,
    logRange: n.logRange,
  });
  client?.client.close();
  client = { network: n.name, client: c };
  return c;
}

const short = (hex: string) => `${hex.slice(0, 16)}…${hex.slice(-8)}`;
const modelLink = (hex: string) => `<a class="mono" href="#/model/${hex}">${short(hex)}</a>`;
const tcbHex = (tcb: bigint | null) => (tcb === null ? "—" : `0x${tcb.toString(16).padStart(16, "0")}`);

const KIND_LABELS: Record<RegistryRecord["kind"], string> = {
  finetune: "fine-tune",
  audit: "audit",
  serving: "serving",
};

/** A fine-tune's parent is its base model; a serving record's (kind 3) is its serving log, not lineage. */
function parentRow(r: RegistryRecord): string {
  if (r.parentModelHash === null) return "";
  if (r.kind === "serving")
    return `<tr class="serving-log-id"><th>Serving log</th><td class="mono">${r.parentModelHash}</td></tr>`;
  return `<tr><th>Base model</th><td>${modelLink(r.parentModelHash)}</td></tr>`;
}

function recordHtml(r: RegistryRecord): string {
  const status = r.revoked
    ? `<span class="tag bad">revoked</span> ${escapeHtml(r.revocationReason ?? "")}`
    : `<span class="tag ok">valid</span>`;
  return `<div class="record" data-manifest="${r.manifestDigest}" data-kind="${r.kind}"><table>
    <tr><th>Kind</th><td><span class="tag kind">${KIND_LABELS[r.kind]}</span> ${status}</td></tr>
    <tr><th>Manifest digest</th><td class="mono">${r.manifestDigest}</td></tr>
    <tr><th>Published</th><td>${r.publishedAt.toISOString().replace(".000Z", "Z")}${
      r.blockNumber === null ? "" : ` · block ${r.blockNumber}`
    }</td></tr>
    ${parentRow(r)}
    <tr><th>Measurement hash</th><td class="mono">${r.measurementHash ?? "—"}</td></tr>
    <tr><th>Policy digest</th><td class="mono">${r.policyDigest ?? "—"}</td></tr>
    <tr><th>Reported TCB</th><td class="mono">${tcbHex(r.reportedTcb)}</td></tr>
    ${r.txHash === null ? "" : `<tr><th>Transaction</th><td class="mono">${r.txHash}</td></tr>`}
  </table>${r.kind === "serving" ? '<div class="serving-slot"></div>' : ""}<div class="attests-slot"></div></div>`;
}

function verdictHtml(records: RegistryRecord[]): string {
  const valid = records.filter((r) => !r.revoked).length;
  if (records.length === 0) {
    return `<div class="verdict neutral" data-verdict="not-recorded">Not recorded<small>No attestation for this model hash on this network.</small></div>`;
  }
  if (valid === 0) {
    return `<div class="verdict bad" data-verdict="revoked">Revoked<small>Every attestation of this model was revoked.</small></div>`;
  }
  return `<div class="verdict ok" data-verdict="attested">Attested<small>${valid} valid attestation(s)${
    records.length > valid ? `, ${records.length - valid} revoked` : ""
  }.</small></div>`;
}

async function lookupModel(modelHash: string, extra = ""): Promise<void> {
  clearError();
  setStatus("busy");
  try {
    const c = await getClient();
    const lineage = await c.lineage(modelHash);
    const records = lineage[0]?.records ?? [];
    const hash = lineage[0]?.modelHash ?? modelHash;
    hashInput.value = hash;
    const lineageHtml =
      lineage.length > 1
        ? `<div class="card" id="lineage"><h2>Lineage</h2><ol class="lineage">${lineage
            .map(
              (s, i) =>
                `<li>${modelLink(s.modelHash)} ${i === 0 ? "(this model)" : ""}${
                  s.parentModelHash === null ? " — base model" : ""
                } · ${s.records.length} record(s)</li>`,
            )
            .join("")}</ol></div>`
        : "";
    resultEl.hidden = false;
    resultEl.innerHTML = `${extra}${verdictHtml(records)}
      <div class="card"><h2>Model</h2><div class="mono" id="model-hash">${hash}</div></div>
      ${lineageHtml}
      ${records.length === 0 ? "" : `<div class="card" id="records"><h2>Records (newest first)</h2>${records.map(recordHtml).join("")}</div>`}`;
    setStatus("done");
    // What each record attests fills in as its bundle arrives (#records gets data-attests="done" when all are in).
    const recordsEl = document.getElementById("records");
    if (recordsEl !== null) void fillAttests(recordsEl, records, c, verifierUrl, servingUrl);
  } catch (error) {
    const e = errorOf(error);
    showError(e.code, e.message);
    resultEl.hidden = true;
    setStatus("error");
  }
}

function checkItem(ok: boolean, text: string): string {
  return `<li class="${ok ? "pass" : "fail"}">${escapeHtml(text)}</li>`;
}

async function showBundle(check: BundleCheck, bundleDigest: string): Promise<void> {
  clearError();
  setStatus("busy");
  const c = await getClient();
  const [record, root] = await Promise.all([c.record(check.manifestDigest), verdictRoot(verifierUrl, bundleDigest)]);
  const e = check.evidence;
  const checks = [
    checkItem(check.allSignaturesValid, `${check.envelopes.length} DSSE signature(s) valid (${check.curve})`),
    checkItem(
      e !== null,
      e !== null
        ? "SEV-SNP report parses"
        : `SEV-SNP report: ${check.reportError?.code}: ${check.reportError?.message}`,
    ),
    checkItem(check.bindingKeyOk, "REPORT_DATA binds the signing key"),
    checkItem(check.bindingNonceOk, "REPORT_DATA carries the bundle nonce"),
    ...chainChecks(check, record).map((c) => checkItem(c.ok, c.text)),
  ];
  const ok = !/class="fail"/.test(checks.join(""));
  const verdict = ok
    ? `<div class="verdict ok" data-verdict="bundle-verified">Bundle verified<small>Signatures hold and the chain records this manifest.</small></div>`
    : `<div class="verdict bad" data-verdict="bundle-failed">Bundle not verified<small>See the failed checks below.</small></div>`;
  const bundleHtml = `${verdict}
    <div class="card" id="bundle"><h2>Bundle checks</h2><ul class="checks">${checks.join("")}</ul></div>
    <div class="card" id="evidence"><h2>Evidence summary</h2><table>
      <tr><th>Manifest</th><td><span id="manifest-kind">${MANIFEST_KIND_LABELS[check.manifestKind]}</span> · <span class="mono" id="manifest-digest">${check.manifestDigest}</span></td></tr>
      <tr><th>Product</th><td>${
        e === null
          ? "— (the report does not parse)"
          : `AMD SEV-SNP ${escapeHtml(e.product)} (report v${e.reportVersion})`
      }</td></tr>
      <tr><th>Root</th><td id="evidence-root">${
        // The root the verifier's verdict says the report chained to; the bundle's own provider label is unsigned.
        root === null
          ? "— (no verifier verdict for this bundle: the AMD chain is checked by the verifier and `provenant audit`)"
          : `${escapeHtml(root.name)} (${root.kind === "amd" ? "AMD's pinned root" : "development root"}, ${escapeHtml(root.product)})`
      }</td></tr>
      <tr><th>Reported TCB</th><td class="mono">${tcbHex(e?.reportedTcb ?? null)}</td></tr>
      <tr><th>Measurement hash</th><td class="mono">${check.measurementHash}${
        check.gpus > 0 ? ` (MEASUREMENT and ${check.gpus} GPU measurement record(s))` : ""
      }</td></tr>
      <tr><th>Job code</th><td class="mono">${check.jobCodeDigest ?? "— (named by a git commit only)"}</td></tr>
      <tr><th>Policy digest</th><td class="mono">${record?.policyDigest ?? "— (not recorded)"}</td></tr>
      <tr><th>Signing key id</th><td class="mono">${check.keyId}</td></tr>
    </table></div>`;
  history.replaceState(null, "", `#/model/${check.modelHash}`);
  await lookupModel(check.modelHash, bundleHtml);
}

async function handleFiles(entries: { file: File; relativePath?: string }[]): Promise<void> {
  clearError();
  if (entries.length === 0) return;
  // A new drop replaces what the page showed; nothing of the previous answer may linger while this one is computed.
  resultEl.hidden = true;
  resultEl.innerHTML = "";
  for (const key of ["seconds", "bytes", "rootDigest"]) delete progressEl.dataset[key];
  setStatus("busy");
  try {
    if (entries.length === 1 && entries[0]!.file.size <= MAX_BUNDLE_BYTES && /\.json$/i.test(entries[0]!.file.name)) {
      const bytes = new Uint8Array(await entries[0]!.file.arrayBuffer());
      if (new TextDecoder().decode(bytes.subarray(0, 4096)).includes(BUNDLE_MEDIA_TYPE)) {
        progressEl.hidden = true;
        await showBundle(await checkBundle(bytes), toHex(sha256Sync(bytes)));
        return;
      }
    }
    setStatus("busy");
    const files = toModelFiles(entries);
    const started = performance.now();
    const hash = await hashModelFiles(files, {
      onProgress: (done, total) => progress(done, total, "hashing"),
      ...enginePreference(),
    });
    const seconds = (performance.now() - started) / 1000;
    const bytes = hash.totalBytes;
    // The figures the page shows are also data attributes, for the browser test and bench/lookup.ts.
    Object.assign(progressEl.dataset, { seconds: String(seconds), bytes: String(bytes), rootDigest: hash.rootDigest });
    const speed = seconds > 0 ? ` (${(bytes / 1e6 / seconds).toFixed(0)} MB/s)` : "";
    const how = `${hash.engines.join(" + ")}, ${hash.workers > 0 ? `${hash.workers} worker(s)` : "page thread"}`;
    $("progress-text").textContent =
      `hashed ${hash.files.length} file(s), ${(bytes / 1048576).toFixed(1)} MiB in ${seconds.toFixed(2)} s${speed}; ${how}`;
    location.hash = `#/model/${hash.rootDigest}`;
  } catch (error) {
    const e = errorOf(error);
    showError(e.code, e.message);
    setStatus("error");
  }
}

/**
 * `?hashEngine=webcrypto|hash-wasm` forces the engine for files that fit in memory (default: the faster one here,
 * measured once); files above 256 MiB always stream through hash-wasm.
 */
function enginePreference(): { engine?: "webcrypto" | "hash-wasm" } {
  const value = new URLSearchParams(location.search).get("hashEngine");
  return value === "webcrypto" || value === "hash-wasm" ? { engine: value } : {};
}

async function readEntry(entry: FileSystemEntry, out: { file: File; relativePath: string }[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ file, relativePath: entry.fullPath.replace(/^\//, "") });
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await readEntry(child, out);
    }
  }
}

function route(): void {
  const match = /^#\/model\/([^/]+)$/.exec(location.hash);
  if (match === null) return;
  const hash = decodeURIComponent(match[1]!);
  if (!isHash(hash)) {
    showError("HASH_MALFORMED", `'${hash}' is not a 64-hex model hash`);
    setStatus("error");
    return;
  }
  void lookupModel(hash);
}

async function start(): Promise<void> {
  try {
    const response = await fetch("./config.json", { cache: "no-store" });
    const config = (await response.json()) as {
      defaultNetwork: string;
      networks: NetworkConfig[];
      verifierUrl?: string | null;
      servingUrl?: string | null;
    };
    networks = config.networks;
    verifierUrl = verifierUrlFrom(location.search, config.verifierUrl);
    servingUrl = servingUrlFrom(location.search, config.servingUrl);
    const wanted = new URLSearchParams(location.search).get("network") ?? config.defaultNetwork;
    networkSelect.innerHTML = networks
      .map((n) => `<option value="${n.name}" ${n.name === wanted ? "selected" : ""}>${escapeHtml(n.label)}</option>`)
      .join("");
  } catch (error) {
    showError("RPC_UNAVAILABLE", `cannot read the explorer config: ${errorOf(error).message}`);
  }
  networkSelect.addEventListener("change", () => route());
  installVerifierSetting(verifierUrl, (url) => {
    verifierUrl = url;
    route();
  });
  installServingSetting(servingUrl, (url) => {
    servingUrl = url;
    route();
  });
  installReceiptPanel({ getClient, verifierUrl: () => verifierUrl });
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = hashInput.value.trim();
    if (!isHash(value)) {
      showError("HASH_MALFORMED", `'${value}' is not a 64-hex model hash`);
      setStatus("error");
      return;
    }
    progressEl.hidden = true;
    const target = `#/model/${value.replace(/^(0x|sha256:)/i, "").toLowerCase()}`;
    if (location.hash === target) route();
    else location.hash = target;
  });
  for (const id of ["pick-files", "pick-folder", "pick-bundle"]) {
    const input = $<HTMLInputElement>(id);
    input.addEventListener("change", () => {
      const files = Array.from(input.files ?? []).map((file) => ({ file, relativePath: file.webkitRelativePath }));
      input.value = "";
      void handleFiles(files);
    });
  }
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const items = Array.from(event.dataTransfer?.items ?? []);
    void (async () => {
      const out: { file: File; relativePath: string }[] = [];
      const entries = items.map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
      if (entries.length > 0) for (const e of entries) await readEntry(e, out);
      else for (const file of Array.from(event.dataTransfer?.files ?? [])) out.push({ file, relativePath: file.name });
      await handleFiles(out);
    })();
  });
  window.addEventListener("hashchange", route);
  setStatus("ready");
  route();
}

void start();
