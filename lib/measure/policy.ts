// The verifier policy fragment that pins a launch measurement: `snp.measurements` entries are either a bare
// 96-hex string or `{name, value}`; the object form is emitted so that lookups can show what the value stands for.
export interface MeasurementPolicySnippet {
  snp: { measurements: { name: string; value: string }[] };
}

export function toPolicySnippet(measurementHex: string, name: string): MeasurementPolicySnippet {
  if (!/^[0-9a-f]{96}$/.test(measurementHex)) throw new RangeError("a measurement is 96 lower-case hex digits");
  return { snp: { measurements: [{ name, value: measurementHex }] } };
}
