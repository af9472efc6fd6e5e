// Validates Kubernetes objects the way the API server would before storing them:
//
//  1. against the Kubernetes 1.3x OpenAPI schemas that kubernetes-models ships (types, enums,
//     required fields, formats), plus cert-manager's and the Prometheus Operator's CRD schemas
//     for Certificate, Issuer, ServiceMonitor and PodMonitor;
//  2. strictly: a field the schema does not know is an error, as with `kubectl apply
//     --validate=strict` (kubernetes-models' validators allow unknown fields, so the field
//     lists are read from the type declarations, *.d.ts, generated from the same schemas);
//  3. custom resources of a CRD given on the command line (--crd) against that CRD's
//     openAPIV3Schema, with the x-kubernetes-* extensions dropped (as tooling.md suggests).
//
// usage: node validate.mjs [--crd CRDS.json]... OBJECTS.json...
//   each JSON file is an array of {"source": "...", "object": {...}} as written by
//   `helm-render template ... -o json` or `helm-render yaml2json FILE...`.
// Prints one line per problem and "N objects valid, N invalid"; exits 1 on any problem.

import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const here = dirname(fileURLToPath(import.meta.url));
const nm = join(here, "node_modules");

// ---- model lookup -------------------------------------------------------------------------

const thirdParty = {
  "cert-manager.io": "@kubernetes-models/cert-manager",
  "acme.cert-manager.io": "@kubernetes-models/cert-manager",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

function modelSpecifier(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (group === "") return `kubernetes-models/${version}/${kind}`;
  if (thirdParty[group]) return `${thirdParty[group]}/${group}/${version}/${kind}`;
  return `kubernetes-models/${group}/${version}/${kind}`;
}

async function loadModel(apiVersion, kind) {
  const spec = modelSpecifier(apiVersion, kind);
  if (!existsSync(join(nm, spec + ".js"))) return null;
  const mod = await import(spec);
  return { Model: mod[kind], dts: join(nm, spec + ".d.ts") };
}

// ---- strict fields from the .d.ts declarations ---------------------------------------------

const dtsCache = new Map();

// parseDts returns {imports: name -> file, interfaces: name -> {props: name -> type}}.
function parseDts(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  const text = readFileSync(file, "utf8").replace(/\/\*\*[\s\S]*?\*\//g, "").replace(/^[ \t]*\n/gm, "");
  const imports = new Map();
  for (const m of text.matchAll(/import \{([^}]*)\} from "([^"]+)";/g)) {
    const target = m[2].startsWith(".")
      ? join(dirname(file), m[2].replace(/\.js$/, ".d.ts"))
      : join(nm, m[2] + ".d.ts");
    for (const name of m[1].split(",")) {
      const n = name.trim().split(/\s+as\s+/).pop();
      if (n) imports.set(n, target);
    }
  }
  const interfaces = new Map();
  for (const m of text.matchAll(/export interface (\w+)(?: extends [\w<>, ]+)? \{\n([\s\S]*?)\n\}/g)) {
    const props = new Map();
    const body = m[2];
    // top-level properties: 4-space indent, "name"?: Type; (Type may span lines when inline)
    const re = /^ {4}"([^"]+)"\??: ([\s\S]*?);$(?=\n {4}"|(?![\s\S]))/gm;
    for (const p of body.matchAll(re)) props.set(p[1], p[2].trim());
    interfaces.set(m[1], { props });
  }
  const aliases = new Map();
  for (const m of text.matchAll(/export type \{ (\w+) as (\w+)/g)) aliases.set(m[2], m[1]);
  const parsed = { imports, interfaces, aliases };
  dtsCache.set(file, parsed);
  return parsed;
}

// resolveInterface finds the declaration of a type name used in file.
function resolveInterface(file, typeName) {
  const d = parseDts(file);
  if (d.interfaces.has(typeName)) return { file, iface: d.interfaces.get(typeName) };
  const target = d.imports.get(typeName);
  if (!target || !existsSync(target)) return null;
  const t = parseDts(target);
  const local = t.aliases.get(typeName) || typeName;
  if (t.interfaces.has(local)) return { file: target, iface: t.interfaces.get(local) };
  return null; // a type alias (Quantity, IntOrString, enums): a scalar
}

function checkFields(value, type, file, path, problems) {
  if (value === null || value === undefined) return;
  type = type.trim();
  let m;
  if ((m = type.match(/^Array<(.+)>$/s))) {
    if (Array.isArray(value)) value.forEach((v, i) => checkFields(v, m[1], file, `${path}[${i}]`, problems));
    return;
  }
  if ((m = type.match(/^\{\s*\[key: string\]: ([\s\S]+?);?\s*\}$/))) {
    if (typeof value === "object" && !Array.isArray(value))
      for (const [k, v] of Object.entries(value)) checkFields(v, m[1], file, `${path}.${k}`, problems);
    return;
  }
  if (!/^\w+$/.test(type)) return; // unions of literals, inline objects, scalars
  if (["string", "number", "boolean", "any", "unknown", "object"].includes(type)) return;
  const r = resolveInterface(file, type);
  if (!r || typeof value !== "object" || Array.isArray(value)) return;
  if (r.iface.props.size === 0) return; // an empty interface: free-form (e.g. RawExtension)
  for (const [k, v] of Object.entries(value)) {
    const t = r.iface.props.get(k);
    if (t === undefined) {
      problems.push(`unknown field "${path ? path + "." : ""}${k}"`);
      continue;
    }
    checkFields(v, t, r.file, path ? `${path}.${k}` : k, problems);
  }
}

function strictProblems(obj, dtsFile, kind) {
  const d = parseDts(dtsFile);
  const top = d.interfaces.get("I" + kind);
  if (!top) return [`no declaration of I${kind} in ${dtsFile}`];
  const problems = [];
  for (const [k, v] of Object.entries(obj)) {
    const t = top.props.get(k);
    if (t === undefined) problems.push(`unknown field "${k}"`);
    else checkFields(v, t, dtsFile, k, problems);
  }
  return problems;
}

// ---- CRD schemas -----------------------------------------------------------------------------

function dropExtensions(schema) {
  if (Array.isArray(schema)) return schema.map(dropExtensions);
  if (schema && typeof schema === "object") {
    const out = {};
    for (const [k, v] of Object.entries(schema)) {
      if (k.startsWith("x-kubernetes-")) continue;
      out[k] = dropExtensions(v);
    }
    // Kubernetes prunes unknown fields instead of rejecting them, except where a schema
    // lists properties: then a field not listed is dropped. Report it as an error here, so a
    // typo in an example or a test object is caught instead of silently pruned.
    if (out.type === "object" && out.properties && out.additionalProperties === undefined &&
        !(schema["x-kubernetes-preserve-unknown-fields"])) {
      out.additionalProperties = false;
    }
    return out;
  }
  return schema;
}

const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addFormat("int32", { type: "number", validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat("int64", { type: "number", validate: (n) => Number.isInteger(n) });
ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
const crdValidators = new Map(); // "group/version/Kind" -> validate function

function addCRD(crd, source) {
  const group = crd.spec.group;
  for (const v of crd.spec.versions) {
    const schema = dropExtensions(v.schema.openAPIV3Schema);
    // metadata is checked by the API server itself; allow it whole here.
    if (schema.properties) schema.properties.metadata = { type: "object" };
    try {
      crdValidators.set(`${group}/${v.name}/${crd.spec.names.kind}`, ajv.compile(schema));
    } catch (e) {
      throw new Error(`${source}: ${crd.metadata.name} ${v.name}: the schema does not compile: ${e.message}`);
    }
  }
}

// ---- main ------------------------------------------------------------------------------------

const args = process.argv.slice(2);
const crdFiles = [];
const objectFiles = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--crd") crdFiles.push(args[++i]);
  else objectFiles.push(args[i]);
}
for (const f of crdFiles) {
  for (const { source, object } of JSON.parse(readFileSync(f, "utf8"))) {
    if (object.kind === "CustomResourceDefinition") addCRD(object, source);
  }
}

let valid = 0;
let invalid = 0;
for (const f of objectFiles) {
  for (const { source, object } of JSON.parse(readFileSync(f, "utf8"))) {
    const name = `${source}: ${object.kind}/${object.metadata?.name ?? "?"}`;
    const problems = [];
    if (!object.apiVersion || !object.kind) {
      problems.push("no apiVersion or kind");
    } else {
      const slash = object.apiVersion.indexOf("/");
      const crdKey = `${slash < 0 ? "" : object.apiVersion.slice(0, slash)}/${object.apiVersion.slice(slash + 1)}/${object.kind}`;
      if (crdValidators.has(crdKey)) {
        const validate = crdValidators.get(crdKey);
        if (!validate(object)) {
          for (const e of validate.errors) problems.push(`${e.instancePath || "/"} ${e.message}${e.params?.additionalProperty ? ` ("${e.params.additionalProperty}")` : ""}`);
        }
      } else {
        const model = await loadModel(object.apiVersion, object.kind);
        if (!model || !model.Model) {
          problems.push(`no schema for ${object.apiVersion} ${object.kind}`);
        } else {
          try {
            new model.Model(object).validate();
          } catch (e) {
            for (const err of e.errors ?? [{ instancePath: "", message: e.message }]) {
              problems.push(`${err.instancePath || "/"} ${err.message}${err.params?.allowedValues ? ` (${err.params.allowedValues.join(", ")})` : ""}`);
            }
          }
          problems.push(...strictProblems(object, model.dts, object.kind));
        }
      }
      // CRDs: their own schemas must compile too.
      if (object.kind === "CustomResourceDefinition" && problems.length === 0) {
        try { addCRD(object, source); } catch (e) { problems.push(e.message); }
      }
    }
    if (problems.length) {
      invalid++;
      for (const p of problems) console.log(`INVALID ${name}: ${p}`);
    } else {
      valid++;
    }
  }
}
console.log(`${valid} objects valid, ${invalid} invalid`);
process.exit(invalid ? 1 : 0);
