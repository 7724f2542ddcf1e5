// The explorer's "what it attests" panels: next to each record, its bundle fetched from the verifier and re-verified
// here against the onchain record (offchain/client/details.ts and details-core.ts, the code `provenant lookup
// --verifier` runs) before anything of it is shown: the launch measurement and the name the policy gives it, the
// job code, the policy's development/open label, the manifest's content, the GPUs; a bundle that does not match is
// shown as such, never its content. Serving records show their log and its newest anchored checkpoint (the chain),
// and, from the serving URL, the log's latest usage statement checked here (offchain/client/usage.ts).
// The verifier URL: `?verifier=`, else the explorer's /config.json, else what the user typed in the header; the
// serving URL likewise (`?serving=`, config.json `servingUrl`, the header).
import type { RegistryClient, RegistryRecord } from "../../offchain/client/core.ts";
import {
  fetchRecordDetails,
  gpuLine,
  type ManifestContent,
  type RecordDetails,
  type VerifierOptions,
} from "../../offchain/client/details.ts";
import { fetchServingUsage, type ServingUsage } from "../../offchain/client/usage.ts";

const STORAGE_KEY = "provenant.verifierUrl";
const SERVING_STORAGE_KEY = "provenant.servingUrl";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const modelLink = (hex: string) => `<a class="mono" href="#/model/${escapeHtml(hex)}">${escapeHtml(hex)}</a>`;
const row = (label: string, value: string, cls = "") =>
  `<tr${cls === "" ? "" : ` class="${cls}"`}><th>${escapeHtml(label)}</th><td>${value}</td></tr>`;
const mono = (text: string) => `<span class="mono">${escapeHtml(text)}</span>`;
const named = (value: string, name: string | null) =>
  `${mono(value)}${name === null ? "" : ` <span class="pin-name">${escapeHtml(name)}</span>`}`;

/** The verifier URL the page uses: `?verifier=` wins, then the explorer's config, then the user's own setting. */
export function verifierUrlFrom(search: string, configured: string | null | undefined): string | null {
  const fromQuery = new URLSearchParams(search).get("verifier");
  if (fromQuery !== null && fromQuery.trim() !== "") return fromQuery.trim();
  if (typeof configured === "string" && configured !== "") return configured;
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null;
  }
}

/** A "Verifier" field in the header, like the network selector: changing it re-runs the current route. */
export function installVerifierSetting(initial: string | null, onChange: (url: string | null) => void): void {
  const header = document.querySelector("header");
  if (header === null || document.getElementById("verifier") !== null) return;
  const label = document.createElement("label");
  label.className = "verifier-setting";
  label.textContent = "Verifier ";
  const input = document.createElement("input");
  input.id = "verifier";
  input.placeholder = "http://127.0.0.1:8780";
  input.spellcheck = false;
  input.value = initial ?? "";
  input.addEventListener("change", () => {
    const value = input.value.trim();
    try {
      if (value === "") globalThis.localStorage?.removeItem(STORAGE_KEY);
      else globalThis.localStorage?.setItem(STORAGE_KEY, value);
    } catch {
      // storage unavailable: the setting lasts for this page
    }
    onChange(value === "" ? null : value);
  });
  label.append(input);
  header.append(label);
  installStyles();
}

/** The serving URL the page reads usage from: `?serving=` wins, then the explorer's config, then the user's setting. */
export function servingUrlFrom(search: string, configured: string | null | undefined): string | null {
  const fromQuery = new URLSearchParams(search).get("serving");
  if (fromQuery !== null && fromQuery.trim() !== "") return fromQuery.trim();
  if (typeof configured === "string" && configured !== "") return configured;
  try {
    return globalThis.localStorage?.getItem(SERVING_STORAGE_KEY) ?? null;
  } catch {
    return null;
  }
}

/** A "Serving" field in the header (a `provenant serve` URL), beside the verifier's: changing it re-runs the route. */
export function installServingSetting(initial: string | null, onChange: (url: string | null) => void): void {
  const header = document.querySelector("header");
  if (header === null || document.getElementById("serving") !== null) return;
  const label = document.createElement("label");
  label.className = "verifier-setting serving-setting";
  label.textContent = "Serving ";
  const input = document.createElement("input");
  input.id = "serving";
  input.placeholder = "http://127.0.0.1:8790";
  input.spellcheck = false;
  input.value = initial ?? "";
  input.addEventListener("change", () => {
    const value = input.value.trim();
    try {
      if (value === "") globalThis.localStorage?.removeItem(SERVING_STORAGE_KEY);
      else globalThis.localStorage?.setItem(SERVING_STORAGE_KEY, value);
    } catch {
      // storage unavailable: the setting lasts for this page
    }
    onChange(value === "" ? null : value);
  });
  label.append(input);
  header.append(label);
  installStyles();
}

function installStyles(): void {
  if (document.getElementById("attests-style") !== null) return;
  const style = document.createElement("style");
  style.id = "attests-style";
  style.textContent = `
    .verifier-setting { font-size: 13px; margin-left: 16px; }
    .verifier-setting input { margin-left: 6px; padding: 4px; width: 220px; }
    .attests { margin-top: 8px; padding: 10px 12px; border-radius: 6px; background: #f7f9fc; border: 1px solid #e3e8ef; }
    .attests h3 { margin: 0 0 6px; font-size: 13.5px; }
    .attests h3 small { font-weight: 400; color: var(--neutral); margin-left: 6px; }
    .attests.mismatch { background: #fdecea; border-color: #f5c2c0; color: var(--bad); }
    .attests.unavailable, .attests.no-verifier { color: var(--neutral); font-size: 13px; }
    .attests .pin-name { font-weight: 600; margin-left: 6px; }
    .tag.dev { background: #fff4d6; color: #8a5a00; }
    .tag.open { background: #fdecea; color: var(--bad); }
    .tag.pinned { background: #dafbe1; color: var(--ok); }
    table.metrics th, table.metrics td { width: auto; padding-right: 12px; }
    .gpu.unverified { color: var(--bad); }
    .usage { margin-top: 6px; }
    .usage.failed { color: var(--bad); }
    .usage.none, .usage.unavailable, .usage.no-serving { color: var(--neutral); font-size: 13px; }
  `;
  document.head.append(style);
}

function policyTag(d: RecordDetails): string {
  if (d.policy === null)
    return d.policyError === null
      ? "—"
      : `not read: ${escapeHtml(d.policyError.code)}: ${escapeHtml(d.policyError.message)}`;
  const cls = d.policy.development ? "dev" : d.policy.open ? "open" : "pinned";
  return `<span class="tag ${cls} policy-label">${escapeHtml(d.policy.label)}</span>`;
}

function manifestRows(m: ManifestContent): string {
  if (m.kind === "audit") {
    const metrics = m.metrics
      .map(
        (x) =>
          `<tr class="metric"><td>${escapeHtml(x.name)}</td><td class="mono">${x.value}</td><td>n = ${x.sampleSize}</td>` +
          `<td>${x.comparator === null ? "" : `${escapeHtml(x.comparator)} ${x.threshold}`}</td>` +
          `<td>${x.passed === null ? "" : x.passed ? '<span class="tag ok">passed</span>' : '<span class="tag bad">failed</span>'}</td></tr>`,
      )
      .join("");
    return (
      row("Suite", `${escapeHtml(m.suite.name)} · ${mono(`sha256:${m.suite.digest}`)}`) +
      row("Harness", `${escapeHtml(m.harness.name)} ${escapeHtml(m.harness.version)}`) +
      row("Metrics", `<table class="metrics">${metrics}</table>`) +
      (m.passed === null ? "" : row("Result", m.passed ? "every threshold passed" : "a threshold failed")) +
      row("Ran", `${escapeHtml(m.startedOn)} → ${escapeHtml(m.finishedOn)}`)
    );
  }
  if (m.kind === "finetune") {
    return (
      row(
        "Base model",
        `${modelLink(m.baseModel.digest)}${m.baseModel.name === null ? "" : ` (${escapeHtml(m.baseModel.name)})`}`,
      ) +
      row(
        "Dataset",
        `${mono(`sha256:${m.dataset.digest}`)}${m.dataset.name === null ? "" : ` (${escapeHtml(m.dataset.name)})`}`,
      ) +
      row("Trainer", escapeHtml(m.trainer.name ?? JSON.stringify(m.trainer.config))) +
      (m.trainingTrace === null
        ? ""
        : row(
            "Training trace",
            `${mono(m.trainingTrace.digest)}${m.trainingTrace.steps === null ? "" : ` · ${m.trainingTrace.steps} steps`}`,
          )) +
      row("Ran", `${escapeHtml(m.startedOn)} → ${escapeHtml(m.finishedOn)}`)
    );
  }
  return (
    row("Serving key", mono(m.servingKey)) +
    row(
      "Started",
      `${escapeHtml(m.startedOn)} · epochs of ${m.epoch.maxReceipts} receipts or ${m.epoch.maxSeconds} s`,
    ) +
    row("Runtime", `${escapeHtml(m.runtime.name)} ${escapeHtml(m.runtime.version)}${m.runtime.gpu ? " on GPU" : ""}`) +
    row("Admitted by", `${escapeHtml(m.admission.require)} record ${mono(m.admission.manifestDigest)}`)
  );
}

/** The panel of one record: what its bundle attests once it matched the record, or why nothing of it is shown. */
export function attestsHtml(d: RecordDetails): string {
  const policy = row("Policy", policyTag(d));
  if (d.status === "mismatch")
    return `<div class="attests mismatch" data-status="mismatch"><h3>Bundle does not match this record</h3>
      <p>The verifier served a bundle that is not the one this record commits to
      (${escapeHtml(d.error?.code ?? "")}: ${escapeHtml(d.error?.message ?? "")}). None of its content is shown.</p>
      <table>${policy}</table></div>`;
  if (d.status === "unavailable")
    return `<div class="attests unavailable" data-status="unavailable">What it attests: not available
      (${escapeHtml(d.error?.code ?? "")}: ${escapeHtml(d.error?.message ?? "")})<table>${policy}</table></div>`;
  const gpus = d.gpus
    .map((g) => row("GPU", escapeHtml(gpuLine(g)), `gpu ${g.verified === true ? "verified" : "unverified"}`))
    .join("");
  return `<div class="attests verified" data-status="verified">
    <h3>What it attests<small>bundle ${escapeHtml((d.bundleDigest ?? "").slice(0, 16))}… re-verified here against the onchain manifest digest</small></h3>
    <table>
      ${policy}
      ${d.measurement === null ? "" : row("Measurement", named(d.measurement.value, d.measurement.name), "measurement")}
      ${row("Job code", d.jobCode === null ? "— (named by a git commit only)" : named(d.jobCode.digest, d.jobCode.name), "job-code")}
      ${d.manifest === null ? "" : manifestRows(d.manifest)}
      ${gpus}
    </table></div>`;
}

/** A serving record's log and its newest checkpoint anchored onchain. */
function servingHtml(logId: string, checkpoint: Awaited<ReturnType<RegistryClient["latestCheckpoint"]>>): string {
  const anchored =
    checkpoint === null
      ? "none anchored yet"
      : `${checkpoint.treeSize} receipt(s), root ${mono(checkpoint.rootHash ?? "—")}${
          checkpoint.anchoredAt === null ? "" : `, anchored ${escapeHtml(checkpoint.anchoredAt.toISOString())}`
        }${checkpoint.blockNumber === null ? "" : ` · block ${checkpoint.blockNumber}`}`;
  return `<table class="serving-log">${row("Latest checkpoint", anchored, "checkpoint")}</table>`;
}

/**
 * A serving log's latest usage statement as checked (usage-core): its numbers only when it is signed by the attested
 * S (and whether it is anchored or pending); a statement that fails a check shows its code, never its numbers.
 */
export function usageHtml(u: ServingUsage): string {
  const why = u.error === null ? "" : `${escapeHtml(u.error.code)}: ${escapeHtml(u.error.message)}`;
  if (u.status === "failed")
    return `<div class="usage failed" data-status="failed" data-code="${escapeHtml(u.error?.code ?? "")}">Latest usage
      statement: <span class="tag bad">failed</span> ${why}. None of its numbers are shown.</div>`;
  if (u.status === "none" || u.status === "unavailable")
    return `<div class="usage ${u.status}" data-status="${u.status}">Latest usage statement: ${
      u.status === "none" ? "none yet (no epoch of this log has closed)" : `not available (${why})`
    }</div>`;
  const m = u.meters!;
  const state =
    u.status === "anchored"
      ? `<span class="tag ok">anchored</span> included under the root anchored for ${u.inclusion!.treeSize} leaves`
      : `<span class="tag dev">pending</span> not under an anchored root yet (${escapeHtml(u.pendingReason ?? "")})`;
  return `<div class="usage ${u.status}" data-status="${u.status}"><table class="usage-table">
    ${row("Latest usage", `<span class="tag ok">verified</span> signed by the attested serving key S · ${state}`, "usage-state")}
    ${row("Period", `${escapeHtml(u.period!.start)} → ${escapeHtml(u.period!.end)}`, "usage-period")}
    ${row("Input tokens", String(m["gen_ai.usage.input_tokens"]), "usage-input")}
    ${row("Output tokens", String(m["gen_ai.usage.output_tokens"]), "usage-output")}
    ${row("Requests", String(m.requests), "usage-requests")}
    ${row("Clients", String(u.clients), "usage-clients")}
    ${row("Statement", `${mono(u.digest ?? "")}${u.recovery === true ? " (recovery, signed by the successor key)" : ""}`, "usage-digest")}
  </table></div>`;
}

const NO_SERVING = `<div class="usage no-serving" data-status="no-serving">Set a serving URL (the header's Serving field,
  <span class="mono">?serving=</span> or config.json <span class="mono">servingUrl</span>: a <span class="mono">provenant
  serve</span> API) to see this log's latest usage statement, checked here against S and the anchored root.</div>`;

/**
 * Fills every record's panels (`.record[data-manifest] .attests-slot` and `.serving-slot`) on the page: details from
 * the verifier (a few at a time), serving checkpoints from the chain. Sets `data-attests="done"` on `root` when all
 * are in, so that a reader (or the browser test) knows the page settled.
 */
export async function fillAttests(
  root: HTMLElement,
  records: readonly RegistryRecord[],
  client: RegistryClient,
  verifierUrl: string | null,
  servingUrl: string | null = null,
): Promise<void> {
  root.dataset.attests = "loading";
  const options: VerifierOptions | null = verifierUrl === null ? null : { verifierUrl, timeoutMs: 15_000 };
  const slot = (r: RegistryRecord, name: string) =>
    root.querySelector<HTMLElement>(`.record[data-manifest="${r.manifestDigest}"] .${name}`);
  const tasks = records.map(async (r) => {
    const servingSlot = slot(r, "serving-slot");
    if (r.kind === "serving" && r.parentModelHash !== null && servingSlot !== null) {
      try {
        servingSlot.innerHTML = servingHtml(r.parentModelHash, await client.latestCheckpoint(r.parentModelHash));
      } catch (error) {
        servingSlot.textContent = `checkpoint not read: ${(error as Error).message}`;
      }
      if (servingUrl === null) servingSlot.insertAdjacentHTML("beforeend", NO_SERVING);
      else {
        const usage = await fetchServingUsage({ servingUrl, timeoutMs: 15_000 }, r, client);
        servingSlot.insertAdjacentHTML("beforeend", usageHtml(usage));
      }
    }
    const target = slot(r, "attests-slot");
    if (target === null) return;
    if (options === null) {
      target.innerHTML = `<div class="attests no-verifier" data-status="no-verifier">Set a verifier URL (header) to see
        what this record attests: its bundle is fetched from the verifier and re-verified here.</div>`;
      return;
    }
    target.innerHTML = `<div class="attests unavailable" data-status="loading">Fetching the bundle from the verifier…</div>`;
    target.innerHTML = attestsHtml(await fetchRecordDetails(options, r));
  });
  await Promise.allSettled(tasks);
  root.dataset.attests = "done";
}

/**
 * The verifier's verdict on a dropped bundle (GET /bundles/:digest): the root its report chained to, as verified
 * (never the bundle's unsigned provider label); null when no verifier is set or it has no verdict for these bytes.
 */
export async function verdictRoot(
  verifierUrl: string | null,
  bundleDigest: string,
): Promise<{ kind: string; product: string; name: string; fingerprint: string } | null> {
  if (verifierUrl === null) return null;
  try {
    const base = verifierUrl.endsWith("/") ? verifierUrl : `${verifierUrl}/`;
    const response = await fetch(new URL(`bundles/${bundleDigest}`, new URL(base, location.href)), {
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) return null;
    const view = (await response.json()) as { evidence?: { root?: Record<string, unknown> } | null };
    const root = view.evidence?.root;
    if (root === undefined || typeof root.name !== "string") return null;
    return {
      kind: String(root.kind),
      product: String(root.product),
      name: root.name,
      fingerprint: String(root.fingerprint),
    };
  } catch {
    return null;
  }
}
