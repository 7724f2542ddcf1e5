// Prometheus text (format 0.0.4) for `provenant serve`: the usage meters under names derived from the OpenTelemetry
// GenAI ones (gen_ai.usage.input_tokens → provenant_gen_ai_usage_input_tokens_total), per client key id (bounded: the
// 1,000 first ids, then "other"), and the state of the queue, the log, the registry checks and the anchoring.
import { OTHER_CLIENTS } from "../lib/receipt/index.ts";

/** Distinct client key ids kept as labels for the life of the process; later ones count under "other". */
export const MAX_METRIC_CLIENTS = 1000;

interface ClientMeters {
  input: number;
  output: number;
  requests: number;
}

export class ServeMetrics {
  readonly clients = new Map<string, ClientMeters>();
  readonly errors = new Map<string, number>();
  /** Requests refused at once because too many were in flight. */
  httpBusy = 0;
  streams = 0;

  recordUsage(clientKeyId: string, input: number, output: number): void {
    let id = clientKeyId;
    if (!this.clients.has(id) && this.clients.size >= MAX_METRIC_CLIENTS) id = OTHER_CLIENTS;
    const m = this.clients.get(id) ?? { input: 0, output: 0, requests: 0 };
    m.input += input;
    m.output += output;
    m.requests += 1;
    this.clients.set(id, m);
  }

  recordError(code: string): void {
    // Codes come from lib/errors.ts's closed list: the label set is bounded.
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }
}

export interface MetricsSnapshot {
  metrics: ServeMetrics;
  gateOpen: boolean;
  revoked: boolean;
  queueDepth: number;
  generating: boolean;
  generations: number;
  generationSeconds: number;
  receiptsIssued: number;
  nextSeq: number;
  treeSize: number;
  epochReceipts: number;
  checkpointSize: number;
  anchoredSize: number;
  logs: number;
  logsUnanchored: number;
  anchors: number;
  anchorErrors: number;
  lastAnchorGas: number | null;
  registryChecks: number;
  registryCheckFailures: number;
  registryLastOk: Date | null;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function renderServeMetrics(s: MetricsSnapshot): string {
  const lines: string[] = [];
  const family = (name: string, type: "counter" | "gauge", help: string, samples: [string, number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const clients = [...s.metrics.clients.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const perClient = (pick: (m: ClientMeters) => number): [string, number][] =>
    clients.map(([id, m]) => [`{client_key_id="${escapeLabel(id)}"}`, pick(m)]);
  family(
    "provenant_gen_ai_usage_input_tokens_total",
    "counter",
    "Prompt tokens of answered requests (OpenTelemetry gen_ai.usage.input_tokens), by client key id.",
    perClient((m) => m.input),
  );
  family(
    "provenant_gen_ai_usage_output_tokens_total",
    "counter",
    "Completion tokens of answered requests (OpenTelemetry gen_ai.usage.output_tokens), by client key id.",
    perClient((m) => m.output),
  );
  family(
    "provenant_gen_ai_requests_total",
    "counter",
    "Answered requests (each with a receipt), by client key id.",
    perClient((m) => m.requests),
  );
  family("provenant_serve_up", "gauge", "1 while requests are served, 0 while the gate refuses them.", [
    ["", s.gateOpen ? 1 : 0],
  ]);
  family("provenant_serve_model_revoked", "gauge", "1 once the model or the serving record is revoked.", [
    ["", s.revoked ? 1 : 0],
  ]);
  family("provenant_serve_queue_depth", "gauge", "Requests waiting for the model.", [["", s.queueDepth]]);
  family("provenant_serve_generating", "gauge", "1 while a generation runs.", [["", s.generating ? 1 : 0]]);
  family("provenant_serve_generations_total", "counter", "Generations finished.", [["", s.generations]]);
  family("provenant_serve_generation_seconds_total", "counter", "Time spent generating.", [
    ["", Number(s.generationSeconds.toFixed(6))],
  ]);
  family("provenant_serve_receipts_total", "counter", "Receipts issued by this process.", [["", s.receiptsIssued]]);
  family("provenant_serve_next_seq", "gauge", "The seq the next receipt gets.", [["", s.nextSeq]]);
  family("provenant_serve_tree_size", "gauge", "Leaves in this serving key's log.", [["", s.treeSize]]);
  family("provenant_serve_epoch_receipts", "gauge", "Receipts in the open epoch.", [["", s.epochReceipts]]);
  family("provenant_serve_checkpoint_tree_size", "gauge", "Tree size of the latest signed checkpoint.", [
    ["", s.checkpointSize],
  ]);
  family("provenant_serve_anchored_tree_size", "gauge", "Tree size of the latest anchored checkpoint.", [
    ["", s.anchoredSize],
  ]);
  family("provenant_serve_logs", "gauge", "Serving logs of this data directory (one per serving key).", [["", s.logs]]);
  family("provenant_serve_logs_unanchored", "gauge", "Logs whose latest checkpoint is not anchored yet.", [
    ["", s.logsUnanchored],
  ]);
  family("provenant_serve_anchors_total", "counter", "Checkpoints anchored by this process.", [["", s.anchors]]);
  family("provenant_serve_anchor_errors_total", "counter", "Failed anchoring attempts (retried).", [
    ["", s.anchorErrors],
  ]);
  if (s.lastAnchorGas !== null)
    family("provenant_serve_anchor_gas", "gauge", "Gas used by the last anchor transaction.", [["", s.lastAnchorGas]]);
  family("provenant_serve_registry_checks_total", "counter", "Registry checks made.", [["", s.registryChecks]]);
  family("provenant_serve_registry_check_failures_total", "counter", "Registry checks that failed.", [
    ["", s.registryCheckFailures],
  ]);
  family(
    "provenant_serve_registry_last_ok_timestamp_seconds",
    "gauge",
    "When the registry was last read successfully (Unix seconds).",
    [["", s.registryLastOk === null ? 0 : Math.floor(s.registryLastOk.getTime() / 1000)]],
  );
  family(
    "provenant_serve_errors_total",
    "counter",
    "Requests that ended with an error, by code.",
    [...s.metrics.errors.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([code, n]) => [`{code="${escapeLabel(code)}"}`, n]),
  );
  family("provenant_serve_http_busy_total", "counter", "Requests refused because too many were in flight.", [
    ["", s.metrics.httpBusy],
  ]);
  family("provenant_serve_streams_total", "counter", "Streamed answers.", [["", s.metrics.streams]]);
  lines.push("");
  return lines.join("\n");
}
