import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import { ARK_FINGERPRINTS } from "./amd-roots.ts";
import { readCertificate, readHwid, readProductName, readSpl, OID_UCODE_SPL } from "./cert.ts";

const dir = new URL("../../test/fixtures/snp/", import.meta.url);

const pemToDer = (name: string) =>
  Buffer.from(readFileSync(new URL(name, dir), "latin1").replace(/-----[^-]+-----|\s+/g, ""), "base64");

describe("AMD certificates", () => {
  it("when the testdata ARKs are hashed, each matches its pinned fingerprint and no other", () => {
    const pins: readonly string[] = Object.values(ARK_FINGERPRINTS);
    for (const [product, pin] of Object.entries(ARK_FINGERPRINTS)) {
      const ark = readCertificate(pemToDer(`${product.toLowerCase()}-ark.pem`), "ARK");
      assert.equal(ark.fingerprint, pin, product);
      assert.equal(ark.subjectCn, `ARK-${product}`);
      assert.equal(pins.filter((p) => p === ark.fingerprint).length, 1);
      for (const name of ["ask", "asvk"]) {
        const intermediate = readCertificate(pemToDer(`${product.toLowerCase()}-${name}.pem`), name);
        assert.ok(!pins.includes(intermediate.fingerprint), `${product} ${name} is not pinned`);
      }
    }
  });

  it("when read, every testdata ARK, ASK and ASVK is RSASSA-PSS SHA-384 salt 48 and signed by its ARK", () => {
    for (const product of Object.keys(ARK_FINGERPRINTS)) {
      const ark = readCertificate(pemToDer(`${product.toLowerCase()}-ark.pem`), "ARK");
      for (const name of ["ark", "ask", "asvk"]) {
        const cert = readCertificate(pemToDer(`${product.toLowerCase()}-${name}.pem`), name);
        assert.equal(cert.rsaPssSha384, true, `${product} ${name}`);
        assert.equal(cert.x509.verify(ark.publicKey), true, `${product} ${name}`);
      }
    }
  });

  it("when reading the real Milan VCEK, it finds productName, ucodeSPL 219 (02 02 00 DB) and the 64-byte hwID", () => {
    const vcek = readCertificate(readFileSync(new URL("milan-report-1-vcek.der", dir)), "VCEK");
    assert.equal(readProductName(vcek), "Milan-B0");
    assert.equal(readSpl(vcek, OID_UCODE_SPL), 219);
    assert.equal(Buffer.from(readHwid(vcek)!).toString("hex").slice(0, 16), "4ffb5cb4fd594f3f");
    assert.equal(vcek.rsaPssSha384, true);
  });

  const vcekDer = new Uint8Array(readFileSync(new URL("milan-report-1-vcek.der", dir)));
  const codeOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof ProvenantError, `not a coded error: ${String(error)}`);
      return error.code;
    }
    return "OK";
  };

  it("when the public key cannot be read (unknown key algorithm), it fails with SNP_CHAIN_INVALID, not an uncoded error", () => {
    const der = Buffer.from(vcekDer);
    const i = der.indexOf(Buffer.from("06072a8648ce3d0201", "hex")); // id-ecPublicKey
    assert.ok(i > 0);
    der[i + 8] = 0x09;
    assert.equal(
      codeOf(() => readCertificate(der, "VCEK")),
      "SNP_CHAIN_INVALID",
    );
  });

  it("when PEM armor follows a BOM, whitespace or text, it reads the certificate", () => {
    const pem = readFileSync(new URL("milan-ark.pem", dir), "latin1");
    const expected = readCertificate(pemToDer("milan-ark.pem"), "ARK").fingerprint;
    for (const prefix of ["\ufeff", "\n\n  \t", "subject=CN=ARK-Milan\nissuer=CN=ARK-Milan\n", "\r\n\ufeff# ARK\r\n"]) {
      const input = new Uint8Array(Buffer.from(prefix + pem, "utf8"));
      assert.equal(readCertificate(input, "ARK").fingerprint, expected, JSON.stringify(prefix));
    }
    assert.equal(
      codeOf(() => readCertificate(new Uint8Array(Buffer.from("no certificate here")), "ARK")),
      "SNP_CHAIN_INVALID",
    );
  });

  it("when DER has trailing bytes after the certificate, it fails with SNP_CHAIN_INVALID", () => {
    for (const tail of [[0], [0, 0, 1], [0x30, 0x00]]) {
      const input = new Uint8Array([...vcekDer, ...tail]);
      assert.equal(
        codeOf(() => readCertificate(input, "VCEK")),
        "SNP_CHAIN_INVALID",
        JSON.stringify(tail),
      );
    }
    assert.equal(readCertificate(vcekDer, "VCEK").subjectCn, "SEV-VCEK");
  });
});
