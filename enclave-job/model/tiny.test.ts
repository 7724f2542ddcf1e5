import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { getLlama, LlamaLogLevel } from "node-llama-cpp";

import { tinyAdapterBytes, tinyModelBytes, tinyVocabulary, writeTinyModel } from "./tiny.ts";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

describe("tiny model", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-tiny-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when generated twice with the same seed, it writes the same bytes", () => {
    assert.equal(sha256(tinyModelBytes({ seed: 3 })), sha256(tinyModelBytes({ seed: 3 })));
    assert.notEqual(sha256(tinyModelBytes({ seed: 3 })), sha256(tinyModelBytes({ seed: 4 })));
  });

  it("when written, it starts with the GGUF v3 header and stays small", () => {
    const bytes = tinyModelBytes();
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "GGUF");
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true), 3);
    assert.ok(bytes.length < 2_000_000);
    assert.ok(tinyModelBytes({ size: "medium" }).length < 5_000_000);
  });

  it("when the vocabulary is built, it has the 256 byte tokens after the three specials", () => {
    const vocab = tinyVocabulary();
    assert.deepEqual(vocab.tokens.slice(0, 3), ["<unk>", "<s>", "</s>"]);
    assert.equal(vocab.tokens[3], "<0x00>");
    assert.equal(vocab.tokens[258], "<0xFF>");
    assert.equal(new Set(vocab.tokens).size, vocab.tokens.length);
  });

  it("when loaded with node-llama-cpp, it generates, and the adapter changes the output", async () => {
    const paths = await writeTinyModel(join(dir, "tiny.gguf"), { seed: 1 });
    const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: paths.model });
    try {
      const tokens = model.tokenize("Question: what is the capital city? Answer:");
      const generate = async (lora: boolean): Promise<number[]> => {
        const context = await model.createContext({
          threads: 1,
          contextSize: 256,
          ...(lora ? { lora: { adapters: [{ filePath: paths.adapter }] } } : {}),
        });
        try {
          const out: number[] = [];
          for await (const token of context.getSequence().evaluate(tokens, { temperature: 0 })) {
            out.push(token);
            if (out.length >= 8) break;
          }
          return out;
        } finally {
          await context.dispose();
        }
      };
      const base = await generate(false);
      assert.equal(base.length, 8);
      assert.deepEqual(await generate(false), base);
      assert.notDeepEqual(await generate(true), base);
    } finally {
      await model.dispose();
    }
  });

  it("when the adapter is generated, it is deterministic", () => {
    assert.equal(sha256(tinyAdapterBytes({ seed: 2 })), sha256(tinyAdapterBytes({ seed: 2 })));
  });
});
