// A small JSON Schema (draft 2020-12 subset) checker, enough for the OMS v1.0 schemas in testdata: type, const, enum,
// pattern, minLength, min/maxItems, minProperties, required, properties, additionalProperties, items, anyOf,
// if/then, exclusiveMinimum and $ref (local "#/$defs/…" and other schemas by $id). Used by tests only.

export type Schema = Record<string, unknown>;

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeMatches(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

/** Returns the list of violations (path: message); empty when `value` conforms. */
export function checkSchema(value: unknown, schema: Schema, registry: ReadonlyMap<string, Schema>): string[] {
  const resolveRef = (ref: string, base: Schema): [Schema, Schema] => {
    const [doc, fragment] = ref.split("#") as [string, string | undefined];
    const root = doc === "" ? base : registry.get(doc);
    if (root === undefined) throw new Error(`unknown $ref ${ref}`);
    let node: unknown = root;
    for (const part of (fragment ?? "").split("/").filter((p) => p !== "")) node = (node as Schema)[part];
    return [node as Schema, root];
  };
  const visit = (v: unknown, s: Schema, root: Schema, path: string, errors: string[]): void => {
    if (typeof s.$ref === "string") {
      const [target, targetRoot] = resolveRef(s.$ref, root);
      visit(v, target, targetRoot, path, errors);
    }
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!types.some((t) => typeMatches(v, t))) return void errors.push(`${path}: expected ${types.join("|")}`);
    }
    if ("const" in s && JSON.stringify(v) !== JSON.stringify(s.const))
      errors.push(`${path}: expected ${String(s.const)}`);
    if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
      errors.push(`${path}: not in enum`);
    }
    if (typeof v === "string") {
      if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(v)) errors.push(`${path}: pattern`);
      if (typeof s.minLength === "number" && [...v].length < s.minLength) errors.push(`${path}: minLength`);
    }
    if (typeof v === "number" && typeof s.exclusiveMinimum === "number" && !(v > s.exclusiveMinimum)) {
      errors.push(`${path}: exclusiveMinimum`);
    }
    if (Array.isArray(v)) {
      if (typeof s.minItems === "number" && v.length < s.minItems) errors.push(`${path}: minItems`);
      if (typeof s.maxItems === "number" && v.length > s.maxItems) errors.push(`${path}: maxItems`);
      if (s.items !== undefined) v.forEach((item, i) => visit(item, s.items as Schema, root, `${path}[${i}]`, errors));
    }
    if (typeOf(v) === "object") {
      const obj = v as Record<string, unknown>;
      const props = (s.properties ?? {}) as Record<string, Schema>;
      if (Array.isArray(s.required)) {
        for (const key of s.required as string[]) if (!(key in obj)) errors.push(`${path}.${key}: required`);
      }
      if (typeof s.minProperties === "number" && Object.keys(obj).length < s.minProperties) {
        errors.push(`${path}: minProperties`);
      }
      for (const [key, child] of Object.entries(obj)) {
        if (props[key] !== undefined) visit(child, props[key], root, `${path}.${key}`, errors);
        else if (s.additionalProperties === false) errors.push(`${path}.${key}: additional property`);
        else if (typeof s.additionalProperties === "object") {
          visit(child, s.additionalProperties as Schema, root, `${path}.${key}`, errors);
        }
      }
    }
    if (Array.isArray(s.anyOf)) {
      const ok = (s.anyOf as Schema[]).some((alt) => {
        const sub: string[] = [];
        visit(v, alt, root, path, sub);
        return sub.length === 0;
      });
      if (!ok) errors.push(`${path}: matches no anyOf branch`);
    }
    if (s.if !== undefined && s.then !== undefined) {
      const sub: string[] = [];
      visit(v, s.if as Schema, root, path, sub);
      if (sub.length === 0) visit(v, s.then as Schema, root, path, errors);
    }
  };
  const errors: string[] = [];
  visit(value, schema, schema, "$", errors);
  return errors;
}
