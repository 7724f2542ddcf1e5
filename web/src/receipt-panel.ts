// The explorer's "verify a receipt" panel: a receipt file (and optionally its proof, the serving bundle, the salt and
// the request and response bytes) checked in the browser by receipt-check.ts, the same checks as
// `provenant receipt verify`, one line per check with its label, and every coded reason. Nothing is uploaded.
import type { RegistryClient } from "../../offchain/client/core.ts";
import type { ReceiptChecks } from "../../offchain/client/receipt-core.ts";
import { MAX_DIGESTED_FILE_BYTES } from "../../offchain/client/receipt-file.ts";
import { verifyReceiptInPage, type ReceiptInput, type ReceiptPageResult } from "./receipt-check.ts";

/** The labels `provenant receipt verify` prints (cli/receipt.ts), in its order. */
const CHECK_LABELS: [keyof ReceiptChecks, string][] = [
  ["signature", "signature by S"],
  ["servingStatement", "serving statement"],
  ["attestation", "attestation (the verifier's record of the serving bundle)"],
  ["modelRecorded", "model recorded"],
  ["servingRecorded", "serving recorded"],
  ["notRevoked", "not revoked at issue"],
  ["inclusion", "inclusion, anchored"],
  ["digests", "request/response"],
];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The result as HTML: the verdict, one line per check (pass, fail, not checked), the reasons and notes. */
export function receiptResultHtml(r: ReceiptPageResult): string {
  const lines = CHECK_LABELS.map(([key, label]) => {
    const v = r.checks[key];
    const cls = v === true ? "pass" : v === false ? "fail" : "skip";
    return `<li class="${cls}" data-check="${key}">${escapeHtml(label)}${v === null ? " — not checked" : ""}</li>`;
  }).join("");
  const errors = r.errors
    .map(
      (e) =>
        `<li class="fail" data-code="${escapeHtml(e.code)}"><strong>${escapeHtml(e.code)}</strong>: ${escapeHtml(e.message)}</li>`,
    )
    .join("");
  const notes = r.notes.map((n) => `<li>${escapeHtml(n.code)}: ${escapeHtml(n.message)}</li>`).join("");
  const where =
    r.inclusion === null
      ? ""
      : `<p class="mono">leaf ${r.inclusion.leafIndex} of ${r.inclusion.treeSize}, root ${escapeHtml(r.inclusion.rootHash)}${
          r.inclusion.anchoredAt === null ? "" : `, anchored ${escapeHtml(r.inclusion.anchoredAt)}`
        }</p>`;
  return `${
    r.ok
      ? `<div class="verdict ok" data-verdict="receipt-verified">Receipt verified<small>seq ${r.seq}, issued ${escapeHtml(r.issuedAt ?? "")}</small></div>`
      : `<div class="verdict bad" data-verdict="receipt-failed">Receipt not verified<small>See the failed checks below.</small></div>`
  }<ul class="checks">${lines}</ul>${where}${errors === "" ? "" : `<ul class="checks errors">${errors}</ul>`}${
    notes === "" ? "" : `<ul class="notes">${notes}</ul>`
  }`;
}

async function bytesOf(input: HTMLInputElement, max: number): Promise<Uint8Array | undefined> {
  const file = input.files?.[0];
  if (file === undefined) return undefined;
  if (file.size > max) throw Object.assign(new Error(`${file.name} is larger than ${max} bytes`), { code: "USAGE" });
  return new Uint8Array(await file.arrayBuffer());
}

/** Adds the panel under the drop zone; `client` and `verifierUrl` are the page's current ones. */
export function installReceiptPanel(deps: {
  getClient: () => Promise<RegistryClient>;
  verifierUrl: () => string | null;
}): void {
  const after = document.getElementById("drop");
  if (after === null || document.getElementById("receipt-panel") !== null) return;
  const panel = document.createElement("div");
  panel.className = "card";
  panel.id = "receipt-panel";
  panel.innerHTML = `<h2>Verify a receipt</h2>
    <p class="muted">An inference receipt from <code>provenant serve</code>: its signature by the serving key, the serving
    statement and its record, the model's records and their revocation times, the anchored inclusion proof and, with
    the salt and the bytes, the request and response digests. Checked here; nothing is uploaded.</p>
    <p>
      <label class="pick">Receipt <input id="receipt-file" type="file" accept=".json" /></label>
      <label class="pick">Proof (optional) <input id="receipt-proof" type="file" accept=".json" /></label>
      <label class="pick">Serving bundle (optional) <input id="receipt-bundle" type="file" accept=".json" /></label>
      <label class="pick">Request <input id="receipt-request" type="file" /></label>
      <label class="pick">Response <input id="receipt-response" type="file" /></label>
    </p>
    <p><input id="receipt-salt" placeholder="salt (64 hex; default: the receipt's own)" spellcheck="false" size="70" />
    <button id="receipt-verify" type="button">Verify receipt</button></p>
    <div id="receipt-result"></div>`;
  after.after(panel);
  const $ = (id: string) => document.getElementById(id) as HTMLInputElement;
  const out = document.getElementById("receipt-result")!;
  // The pickers' inputs are hidden (as the drop zone's are): the chosen file's name shows on its label instead.
  for (const id of ["receipt-file", "receipt-proof", "receipt-bundle", "receipt-request", "receipt-response"]) {
    const input = $(id);
    const name = document.createElement("span");
    name.className = "chosen";
    input.after(name);
    input.addEventListener(
      "change",
      () => (name.textContent = input.files?.[0] === undefined ? "" : `: ${input.files[0].name}`),
    );
  }
  $("receipt-verify").addEventListener("click", () => {
    void (async () => {
      panel.dataset.state = "busy";
      out.innerHTML = "";
      try {
        const receipt = await bytesOf($("receipt-file"), MAX_DIGESTED_FILE_BYTES);
        if (receipt === undefined) throw Object.assign(new Error("choose a receipt file first"), { code: "USAGE" });
        const optional = async (id: string, key: keyof ReceiptInput) => {
          const b = await bytesOf($(id), MAX_DIGESTED_FILE_BYTES);
          return b === undefined ? {} : { [key]: b };
        };
        const input: ReceiptInput = {
          receipt,
          ...(await optional("receipt-proof", "proof")),
          ...(await optional("receipt-bundle", "servingBundle")),
          ...(await optional("receipt-request", "request")),
          ...(await optional("receipt-response", "response")),
          salt: $("receipt-salt").value,
        };
        const url = deps.verifierUrl();
        const result = await verifyReceiptInPage(input, {
          client: await deps.getClient(),
          verifier: url === null ? null : { verifierUrl: url, timeoutMs: 15_000 },
        });
        out.innerHTML = receiptResultHtml(result);
      } catch (error) {
        const e = error as { code?: unknown; message?: unknown };
        out.innerHTML = `<div id="receipt-error" class="verdict bad" data-code="${escapeHtml(String(e.code ?? "INTERNAL"))}">${escapeHtml(
          String(e.code ?? "INTERNAL"),
        )}<small>${escapeHtml(String(e.message ?? error))}</small></div>`;
      }
      panel.dataset.state = "done";
    })();
  });
}
