import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { AMD_CERTIFICATES, ARK_FINGERPRINTS } from "./amd-roots.ts";
import { readCertificate, readHwid, readProductName, readSpl, OID_UCODE_SPL } from "./cert.ts";

const dir = new URL("../../../shared/testdata/snp/", import.meta.url);

describe("AMD certificates", () => {
  it("when read, every built-in ARK, ASK and ASVK is RSASSA-PSS SHA-384 salt 48, correctly signed, and the ARKs match their pins", () => {
    for (const [product, set] of Object.entries(AMD_CERTIFICATES)) {
      const ark = readCertificate(Buffer.from(set.ark, "base64"), "ARK");
      assert.equal(ark.fingerprint, ARK_FINGERPRINTS[product as keyof typeof ARK_FINGERPRINTS]);
      assert.equal(ark.subjectCn, `ARK-${product}`);
      for (const [name, b64] of Object.entries(set)) {
        const cert = readCertificate(Buffer.from(b64, "base64"), name);
        assert.equal(cert.rsaPssSha384, true, `${product} ${name}`);
        assert.equal(cert.x509.verify(ark.publicKey), true, `${product} ${name}`);
      }
    }
  });

  it("when the built-in certificates are compared with testdata, they are the same bytes", () => {
    for (const [product, set] of Object.entries(AMD_CERTIFICATES)) {
      for (const [name, b64] of Object.entries(set)) {
        const pem = readFileSync(new URL(`${product.toLowerCase()}-${name}.pem`, dir), "latin1");
        assert.equal(pem.replace(/-----[^-]+-----|\s+/g, ""), b64);
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
