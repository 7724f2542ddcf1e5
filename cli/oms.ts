// `provenant hash`, `provenant oms sign`, `provenant oms verify`: the edges of lib/oms (files, keys, terminal).
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";

import {
  defineCommand,
  integerOption,
  progressBar,
  readInputFile,
  requiredOption,
  type CliIo,
  type Command,
} from "../lib/cli/index.ts";
import { IoError, MalformedInputError, UsageError } from "../lib/errors.ts";
import { hashModel, signModel, verifyModel, type HashOptions, type VerifyModelOptions } from "../lib/oms/index.ts";

const HASH_USAGE =
  "provenant hash <path> [--json] [--method files|shards] [--shard-size <bytes>] [--ignore-paths <path>]… [--no-ignore-git] [--allow-symlinks] [--threads <n>]";
const SIGN_USAGE =
  "provenant oms sign <model-path> --signature <model.sig> --private-key <pem> [--signing-certificate <pem> --certificate-chain <pem>…] [--method files|shards] [--shard-size <bytes>] [--ignore-paths <path>]… [--allow-symlinks] [--json]";
const VERIFY_USAGE =
  "provenant oms verify <model-path> --signature <model.sig> (--public-key <pem> | --certificate-chain <pem>…) [--ignore-paths <path>]… [--json]";

function keyError(path: string, error: unknown): never {
  throw new MalformedInputError("OMS_MALFORMED", `${path} is not a usable key: ${(error as Error).message}`, {
    cause: error,
    details: { path },
  });
}

async function loadPrivateKey(io: CliIo, path: string): Promise<KeyObject> {
  const bytes = await readInputFile(io, path, "private key");
  try {
    return createPrivateKey(bytes);
  } catch (error) {
    return keyError(path, error);
  }
}

/** A public key from a PEM or DER SubjectPublicKeyInfo, or from a certificate. */
async function loadPublicKey(io: CliIo, path: string): Promise<KeyObject> {
  const bytes = await readInputFile(io, path, "public key");
  try {
    if (bytes.includes("-----BEGIN CERTIFICATE-----")) return new X509Certificate(bytes).publicKey;
    if (bytes.includes("-----BEGIN")) return createPublicKey(bytes);
    return createPublicKey({ key: bytes, format: "der", type: "spki" });
  } catch (error) {
    return keyError(path, error);
  }
}

/** Every certificate in a PEM file (a chain file may hold several). */
async function loadCertificates(io: CliIo, path: string): Promise<X509Certificate[]> {
  const text = (await readInputFile(io, path, "certificate")).toString("utf8");
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) keyError(path, new Error("no PEM certificate found"));
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (error) {
    return keyError(path, error);
  }
}

function parseMethod(value: string | undefined): "files" | "shards" | undefined {
  if (value === undefined || value === "files" || value === "shards") return value;
  throw new UsageError(`--method must be files or shards, got ${value}`);
}

const hashCommand = defineCommand({
  path: ["hash"],
  summary: "OMS v1.0 root digest and per-file SHA-256 of a model file or directory",
  usage: HASH_USAGE,
  options: {
    method: { type: "string" },
    "shard-size": { type: "string" },
    "ignore-paths": { type: "string", multiple: true },
    "no-ignore-git": { type: "boolean" },
    "allow-symlinks": { type: "boolean" },
    threads: { type: "string" },
  },
  positionals: ["path"],
  async run({ values, positionals, io, json }) {
    const path = resolve(io.cwd, positionals[0]!);
    const options: HashOptions = {
      ignorePaths: values["ignore-paths"] ?? [],
      ignoreGitPaths: values["no-ignore-git"] !== true,
      allowSymlinks: values["allow-symlinks"] === true,
    };
    const method = parseMethod(values.method);
    if (method !== undefined) options.method = method;
    const shardSize = integerOption(values["shard-size"], "shard-size", { min: 1 });
    if (shardSize !== undefined) options.shardSize = shardSize;
    const threads = integerOption(values.threads, "threads", { min: 1, max: 256 });
    if (threads !== undefined) options.threads = threads;
    const bar = json ? undefined : progressBar(io, "hashing");
    if (bar !== undefined) options.onProgress = (done, total) => bar.update(done, total);
    const hash = await hashModel(path, options);
    bar?.done();
    return {
      ok: true,
      fields: {
        rootDigest: hash.rootDigest,
        method: hash.method,
        ...(hash.shardSize === undefined ? {} : { shardSize: hash.shardSize }),
        files: hash.files.map((f) => ({ name: f.name, digest: f.digest, size: f.size })),
      },
      text:
        `root ${hash.rootDigest}  (${hash.method}, ${hash.files.length} files, ${hash.totalBytes} bytes)\n` +
        hash.files.map((f) => `${f.digest}  ${String(f.size).padStart(12)}  ${f.name}\n`).join(""),
    };
  },
});

const signCommand = defineCommand({
  path: ["oms", "sign"],
  summary: "sign a model as OpenSSF Model Signing v1.0 (model.sig, key or certificate mode)",
  usage: SIGN_USAGE,
  options: {
    signature: { type: "string" },
    "private-key": { type: "string" },
    "signing-certificate": { type: "string" },
    "certificate-chain": { type: "string", multiple: true },
    method: { type: "string" },
    "shard-size": { type: "string" },
    "ignore-paths": { type: "string", multiple: true },
    "allow-symlinks": { type: "boolean" },
  },
  positionals: ["model-path"],
  async run({ values, positionals, io, json }) {
    const modelPath = resolve(io.cwd, positionals[0]!);
    const signaturePath = resolve(io.cwd, requiredOption(values.signature, "signature", SIGN_USAGE));
    const privateKey = await loadPrivateKey(io, requiredOption(values["private-key"], "private-key", SIGN_USAGE));
    let certificates: Uint8Array[] | undefined;
    if (values["signing-certificate"] !== undefined) {
      const leaf = await loadCertificates(io, values["signing-certificate"]);
      const chain: X509Certificate[] = [];
      for (const p of values["certificate-chain"] ?? []) chain.push(...(await loadCertificates(io, p)));
      certificates = [...leaf, ...chain].map((c) => new Uint8Array(c.raw));
    } else if (values["certificate-chain"] !== undefined) {
      throw new UsageError("--certificate-chain needs --signing-certificate");
    }
    const method = parseMethod(values.method);
    const shardSize = integerOption(values["shard-size"], "shard-size", { min: 1 });
    const bar = json ? undefined : progressBar(io, "hashing");
    const { bytes, hash } = await signModel(modelPath, {
      privateKey,
      signaturePath,
      ignorePaths: values["ignore-paths"] ?? [],
      allowSymlinks: values["allow-symlinks"] === true,
      ...(method === undefined ? {} : { method }),
      ...(shardSize === undefined ? {} : { shardSize }),
      ...(certificates === undefined ? {} : { certificates }),
      ...(bar === undefined ? {} : { onProgress: (d: number, t: number) => bar.update(d, t) }),
    });
    bar?.done();
    try {
      await writeFile(signaturePath, bytes);
    } catch (error) {
      throw new IoError("IO_ERROR", `cannot write ${signaturePath}: ${(error as Error).message}`, { cause: error });
    }
    return {
      ok: true,
      fields: { signature: signaturePath, rootDigest: hash.rootDigest, files: hash.files.length },
      text: `signed ${hash.rootDigest} (${hash.files.length} files) → ${signaturePath}\n`,
    };
  },
});

const verifyCommand = defineCommand({
  path: ["oms", "verify"],
  summary: "verify a model against an OMS signature (exit 0 valid, 1 refused, 2 unusable input)",
  usage: VERIFY_USAGE,
  options: {
    signature: { type: "string" },
    "public-key": { type: "string" },
    "certificate-chain": { type: "string", multiple: true },
    "ignore-paths": { type: "string", multiple: true },
  },
  positionals: ["model-path"],
  async run({ values, positionals, io, json }) {
    const modelPath = resolve(io.cwd, positionals[0]!);
    const signaturePath = resolve(io.cwd, requiredOption(values.signature, "signature", VERIFY_USAGE));
    if (values["public-key"] === undefined && values["certificate-chain"] === undefined) {
      throw new UsageError(`give --public-key or --certificate-chain\nusage: ${VERIFY_USAGE}`);
    }
    const signatureBytes = await readInputFile(io, signaturePath, "signature");
    const options: VerifyModelOptions = { signaturePath, ignorePaths: values["ignore-paths"] ?? [] };
    if (values["public-key"] !== undefined) options.publicKey = await loadPublicKey(io, values["public-key"]);
    if (values["certificate-chain"] !== undefined) {
      const trusted: X509Certificate[] = [];
      for (const p of values["certificate-chain"]) trusted.push(...(await loadCertificates(io, p)));
      options.trustedCertificates = trusted;
    }
    const bar = json ? undefined : progressBar(io, "verifying");
    if (bar !== undefined) options.onProgress = (d, t) => bar.update(d, t);
    const verdict = await verifyModel(modelPath, signatureBytes, options);
    bar?.done();
    return {
      ok: true,
      fields: {
        rootDigest: verdict.rootDigest,
        modelName: verdict.modelName,
        method: verdict.method,
        resources: verdict.resources,
      },
      text: `verified ${verdict.rootDigest} (${verdict.resources} resources, ${verdict.method})\n`,
    };
  },
});

export const commands: readonly Command[] = [hashCommand, signCommand, verifyCommand];
