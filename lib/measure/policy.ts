// The verifier policy fragment that pins a launch measurement: `snp.measurements` entries are either a bare
// 96-hex string or `{name, value}`; the object form is emitted so that lookups can show what the value stands for.
import { MAX_MEASUREMENT_NAME, isPinName } from "../snp/validate.ts";

export interface MeasurementPolicySnippet {
  snp: { measurements: { name: string; value: string }[] };
}

/** The snippet for one measurement; `name` must be one the policy reader takes (lib/snp isPinName), or it throws. */
export function toPolicySnippet(measurementHex: string, name: string): MeasurementPolicySnippet {
  if (!/^[0-9a-f]{96}$/.test(measurementHex)) throw new RangeError("a measurement is 96 lower-case hex digits");
  // A snippet the verifier would refuse (POLICY_INVALID) is no snippet: the name follows the policy's own rule.
  if (!isPinName(name))
    throw new RangeError(`a measurement name is 1 to ${MAX_MEASUREMENT_NAME} printable characters, not <…>`);
  return { snp: { measurements: [{ name, value: measurementHex }] } };
}
