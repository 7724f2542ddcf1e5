import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ARK_FINGERPRINTS } from "./amd-roots.ts";
import { readCertificate, readHwid, readProductName, readSpl, OID_UCODE_SPL } from "./cert.ts";

const dir = new URL("../../../shared/testdata/snp/", import.meta.url);

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
});
