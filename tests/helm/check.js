#!/usr/bin/env node
// tests/helm/check.js: checks on the manifests rendered from the lfsgate chart
// (tests/helm/render's output, a `helm template`-style multi-document YAML stream).
//
//   node check.js validate MANIFESTS.yaml
//     Each object against its Kubernetes schema (npm kubernetes-models, and
//     @kubernetes-models/prometheus-operator for the ServiceMonitor), plus a check those
//     validators do not make: no unknown fields anywhere (a misspelt key that the API
//     server would silently drop), read from the models' TypeScript declarations. Then
//     the references between objects (selectors, named ports, volumes, Secret keys, HPA
//     target), the pod's security settings, and lfsgate's config in the ConfigMap: every
//     GIFTLESS_CONFIG_* variable names an existing leaf (lfsgate's override rule), every
//     file or directory the config names is inside a mount (writable where lfsgate
//     writes), no Secret value is in the ConfigMap, and terminationGracePeriodSeconds
//     exceeds the preStop sleep plus SERVER.shutdown_timeout.
//     Prints "ok Kind/name" per object, "error: ..." per problem; exit 1 on any problem.
//
//   node check.js config MANIFESTS.yaml
//     Prints the lfsgate config (the ConfigMap's lfsgate.yaml) as JSON.
//
//   node check.js query MANIFESTS.yaml JS_EXPR...
//     Prints each JS_EXPR's value as one line of JSON (an empty line when undefined), with
//     `c` the lfsgate config and `k(KIND)` the first object of that kind.
//
//   node check.js pod MANIFESTS.yaml --bin LFSGATE --root DIR [--secret NAME/KEY=VALUE]...
//       [--secret NAME/KEY=@FILE]... [-- EXTRA_ARGS...]
//     Runs `LFSGATE <container args> --check-config EXTRA_ARGS` the way the pod would run
//     it: every volume of the lfsgate container is recreated under DIR at its mountPath
//     (ConfigMap and Secret items as files, emptyDir/PVC as empty directories), the
//     container's environment is set (and nothing else from ours but PATH), and absolute
//     paths in the config, the args and the environment that fall inside a mount are
//     prefixed with DIR. Secrets the release does not render itself (existingSecret)
//     come from --secret. Exits with lfsgate's status.
"use strict";

const fs = require("fs");
const path = require("path");
const childProcess = require("child_process");
const YAML = require("yaml");

// ---------------------------------------------------------------- manifests

function loadManifests(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  const objs = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${file}: YAML: ${d.errors[0].message}`);
    const o = d.toJS();
    if (o === null || o === undefined) continue;
    objs.push(o);
  }
  return objs;
}

const id = (o) => `${o.kind}/${o.metadata && o.metadata.name}`;

// ---------------------------------------------------------------- schemas

function modelModule(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

// A reader for the subset of TypeScript the models' .d.ts files use: interfaces with quoted
// property names, index signatures, Array<T>, unions, literals, inline object types,
// imports and `export { A as B }`.
const dtsCache = new Map();

function tokenize(src) {
  src = src.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
  const re = /\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|=>|\S)/gy;
  const toks = [];
  let m;
  while ((m = re.exec(src)) !== null) toks.push(m[1]);
  return toks;
}

function parseDts(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  const t = tokenize(fs.readFileSync(file, "utf8"));
  const decls = new Map(); // local name -> type
  const imports = new Map(); // local name -> {mod, name}
  const exportsAs = new Map(); // exported name -> local name
  let i = 0;
  const peek = () => t[i];
  const next = () => t[i++];
  const expect = (s) => {
    if (t[i] !== s) throw new Error(`${file}: expected ${s} at token ${i}, got ${t[i]}`);
    i++;
  };
  const unq = (s) => (s[0] === '"' || s[0] === "'" ? s.slice(1, -1) : s);

  function parseMembers() {
    const obj = { k: "obj", props: new Map(), index: null };
    expect("{");
    while (peek() !== "}") {
      if (peek() === "readonly") next();
      if (peek() === "[") {
        next(); next(); expect(":"); next(); expect("]"); expect(":");
        obj.index = parseType();
      } else {
        const name = unq(next());
        if (peek() === "?") next();
        if (peek() === "(") { // a method: skip to ';'
          while (peek() !== ";" && peek() !== "}") next();
        } else {
          expect(":");
          obj.props.set(name, parseType());
        }
      }
      if (peek() === ";" || peek() === ",") next();
    }
    expect("}");
    return obj;
  }

  function parsePrimary() {
    const tok = peek();
    if (tok === "{") return parseMembers();
    if (tok === "(") { next(); const ty = parseType(); expect(")"); return ty; }
    next();
    if (tok[0] === '"' || tok[0] === "'" || /^-?\d/.test(tok)) return { k: "prim" };
    if (tok === "Array" && peek() === "<") {
      next(); const of = parseType(); expect(">");
      return { k: "arr", of };
    }
    if (peek() === "<") { // other generics: skip the arguments
      let depth = 0;
      do {
        if (peek() === "<") depth++;
        else if (peek() === ">") depth--;
        next();
      } while (depth > 0);
      return { k: "prim" };
    }
    if (["string", "number", "boolean", "any", "unknown", "null", "undefined", "object", "never", "true", "false"].includes(tok))
      return { k: "prim" };
    return { k: "ref", name: tok, file };
  }

  function parseType() {
    if (peek() === "|") next();
    const of = [];
    for (;;) {
      let ty = parsePrimary();
      while (peek() === "[" && t[i + 1] === "]") { next(); next(); ty = { k: "arr", of: ty }; }
      of.push(ty);
      if (peek() !== "|") break;
      next();
    }
    return of.length === 1 ? of[0] : { k: "union", of };
  }

  while (i < t.length) {
    const tok = next();
    if (tok === "import" && peek() === "{") {
      next();
      const names = [];
      while (peek() !== "}") {
        const name = next();
        let local = name;
        if (peek() === "as") { next(); local = next(); }
        names.push([name, local]);
        if (peek() === ",") next();
      }
      next(); expect("from");
      const mod = unq(next());
      for (const [name, local] of names) imports.set(local, { mod, name });
    } else if (tok === "export" && peek() === "{") {
      next();
      while (peek() !== "}") {
        const local = next();
        let name = local;
        if (peek() === "as") { next(); name = next(); }
        exportsAs.set(name, local);
        if (peek() === ",") next();
      }
      next();
    } else if (tok === "interface") {
      const name = next();
      if (peek() === "extends") while (peek() !== "{") next();
      decls.set(name, parseMembers());
    } else if (tok === "type" && t[i - 2] === "declare") {
      const name = next();
      expect("=");
      decls.set(name, parseType());
    }
  }
  const mod = { file, decls, imports, exportsAs };
  dtsCache.set(file, mod);
  return mod;
}

function resolveModuleDts(mod, fromFile) {
  let js;
  if (mod.startsWith(".")) {
    const base = path.resolve(path.dirname(fromFile), mod);
    for (const f of [base + ".d.ts", path.join(base, "index.d.ts")]) if (fs.existsSync(f)) return f;
    return null;
  }
  try {
    js = require.resolve(mod, { paths: [path.dirname(fromFile)] });
  } catch (e) {
    return null;
  }
  const dts = js.replace(/\.(c|m)?js$/, ".d.ts");
  return fs.existsSync(dts) ? dts : null;
}

const IGNORED_REFS = new Set(["TypeMeta", "ModelData", "Model"]);

function resolveRef(ref, seen = 0) {
  if (seen > 20) throw new Error(`type ${ref.name}: too many indirections`);
  const mod = parseDts(ref.file);
  const local = mod.exportsAs.get(ref.name) || ref.name;
  if (mod.decls.has(local)) return mod.decls.get(local);
  const imp = mod.imports.get(local);
  if (imp) {
    if (IGNORED_REFS.has(imp.name)) return { k: "prim" };
    const f = resolveModuleDts(imp.mod, ref.file);
    if (!f) throw new Error(`type ${ref.name}: cannot find ${imp.mod} from ${ref.file}`);
    return resolveRef({ k: "ref", name: imp.name, file: f }, seen + 1);
  }
  throw new Error(`type ${ref.name}: not declared in ${ref.file}`);
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function unknownFields(value, type, where, errs) {
  if (type.k === "ref") type = resolveRef(type);
  if (type.k === "ref") return unknownFields(value, type, where, errs);
  if (type.k === "union") {
    const want = Array.isArray(value) ? "arr" : isPlainObject(value) ? "obj" : null;
    if (!want) return;
    for (let v of type.of) {
      while (v.k === "ref") v = resolveRef(v);
      if (v.k === want) return unknownFields(value, v, where, errs);
    }
    return;
  }
  if (type.k === "arr") {
    if (Array.isArray(value)) value.forEach((e, n) => unknownFields(e, type.of, `${where}[${n}]`, errs));
    return;
  }
  if (type.k === "obj" && isPlainObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      const p = type.props.get(key) || type.index;
      if (!p) errs.push(`${where}.${key}: unknown field`);
      else unknownFields(v, p, `${where}.${key}`, errs);
    }
  }
}

function validateSchema(o) {
  const errs = [];
  if (!o.apiVersion || !o.kind) return ["apiVersion and kind are required"];
  const modName = modelModule(o.apiVersion, o.kind);
  let Model, jsFile;
  try {
    jsFile = require.resolve(modName);
    Model = require(modName)[o.kind];
  } catch (e) {
    return [`no schema for ${o.apiVersion} ${o.kind} (${modName})`];
  }
  try {
    new Model(o).validate();
  } catch (e) {
    errs.push(`schema: ${e.message}`);
  }
  const dts = jsFile.replace(/\.js$/, ".d.ts");
  unknownFields(o, { k: "ref", name: `I${o.kind}`, file: dts }, "", errs);
  return errs;
}

// ---------------------------------------------------------------- cross-references

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

function lfsgateConfig(objs) {
  const cms = objs.filter((o) => o.kind === "ConfigMap" && o.data && "lfsgate.yaml" in o.data);
  if (cms.length !== 1) throw new Error(`expected one ConfigMap with lfsgate.yaml, found ${cms.length}`);
  return { cm: cms[0], config: YAML.parse(cms[0].data["lfsgate.yaml"]) };
}

// lfsgate's override rule (config/env.c): every leaf -- a value that is not a mapping --
// under GIFTLESS_CONFIG_ + its key path upper-cased and joined with "_".
function leafVariables(tree, prefix = "", out = new Set()) {
  for (const [k, v] of Object.entries(tree || {})) {
    const p = prefix ? `${prefix}_${k}` : k;
    if (isPlainObject(v)) leafVariables(v, p, out);
    else out.add("GIFTLESS_CONFIG_" + p.toUpperCase());
  }
  return out;
}

function secretValue(objs, name, key) {
  const s = objs.find((o) => o.kind === "Secret" && o.metadata.name === name);
  if (!s) return undefined;
  if (s.stringData && key in s.stringData) return s.stringData[key];
  if (s.data && key in s.data) return Buffer.from(s.data[key], "base64").toString("utf8");
  return null; // the Secret is rendered but lacks the key
}

function under(p, dir) {
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/");
}

function crossChecks(objs) {
  const errs = [];
  const err = (o, msg) => errs.push(`${id(o)}: ${msg}`);
  const byKind = (k) => objs.filter((o) => o.kind === k);
  const seen = new Set();
  for (const o of objs) {
    const md = o.metadata || {};
    const key = `${o.apiVersion}/${o.kind}/${md.namespace}/${md.name}`;
    if (seen.has(key)) err(o, "rendered twice");
    seen.add(key);
    if (!md.name || md.name.length > 253 || !DNS1123_SUBDOMAIN.test(md.name)) err(o, `bad name "${md.name}"`);
    if (o.kind === "Service" && (md.name.length > 63 || !DNS1035_LABEL.test(md.name)))
      err(o, `a Service name must be a DNS-1035 label of at most 63 characters: "${md.name}"`);
    for (const [k, v] of Object.entries(md.labels || {}))
      if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) err(o, `label ${k}: bad value "${v}"`);
  }

  const deps = byKind("Deployment");
  if (deps.length !== 1) {
    errs.push(`expected one Deployment, found ${deps.length}`);
    return errs;
  }
  const dep = deps[0];
  const pod = dep.spec.template;
  const podLabels = pod.metadata.labels || {};
  if (!matches(dep.spec.selector.matchLabels, podLabels)) err(dep, "selector does not match the pod labels");
  const spec = pod.spec;
  const c = (spec.containers || []).find((x) => x.name === "lfsgate");
  if (!c) {
    err(dep, 'no container "lfsgate"');
    return errs;
  }

  // security
  const psc = spec.securityContext || {}, csc = c.securityContext || {};
  if (!(csc.runAsNonRoot || psc.runAsNonRoot)) err(dep, "runAsNonRoot is not set");
  if ((csc.runAsUser ?? psc.runAsUser) === 0) err(dep, "runs as root");
  if (csc.readOnlyRootFilesystem !== true) err(dep, "readOnlyRootFilesystem is not true");
  if (csc.allowPrivilegeEscalation !== false) err(dep, "allowPrivilegeEscalation is not false");

  // ports, probes
  const ports = new Map();
  for (const p of c.ports || []) {
    if (p.name) {
      if (p.name.length > 15 || !PORT_NAME.test(p.name) || !/[a-z]/.test(p.name)) err(dep, `bad port name "${p.name}"`);
      if (ports.has(p.name)) err(dep, `port name "${p.name}" used twice`);
      ports.set(p.name, p.containerPort);
    }
  }
  for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
    const port = c[probe] && c[probe].httpGet && c[probe].httpGet.port;
    if (typeof port === "string" && !ports.has(port)) err(dep, `${probe}: no container port "${port}"`);
  }
  if (!c.livenessProbe || !c.readinessProbe) err(dep, "liveness and readiness probes are required");

  // volumes
  const volumes = new Map();
  for (const v of spec.volumes || []) {
    if (volumes.has(v.name)) err(dep, `volume "${v.name}" defined twice`);
    volumes.set(v.name, v);
  }
  const mountPaths = new Set();
  for (const m of c.volumeMounts || []) {
    if (!volumes.has(m.name)) err(dep, `volumeMount "${m.name}" has no volume`);
    if (mountPaths.has(m.mountPath)) err(dep, `mountPath ${m.mountPath} used twice`);
    mountPaths.add(m.mountPath);
  }
  const externalSecrets = new Set();
  const checkSecretKey = (name, key, what) => {
    const v = secretValue(objs, name, key);
    if (v === undefined) externalSecrets.add(name); // existingSecret: not ours to check
    else if (v === null) err(dep, `${what}: Secret ${name} has no key "${key}"`);
  };
  for (const v of volumes.values()) {
    if (v.configMap) {
      const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === v.configMap.name);
      if (!cm) err(dep, `volume ${v.name}: no ConfigMap ${v.configMap.name}`);
      else for (const it of v.configMap.items || [])
        if (!(it.key in (cm.data || {}))) err(dep, `volume ${v.name}: ConfigMap has no key ${it.key}`);
    }
    if (v.secret) for (const it of v.secret.items || []) checkSecretKey(v.secret.secretName, it.key, `volume ${v.name}`);
    if (v.persistentVolumeClaim) {
      const n = v.persistentVolumeClaim.claimName;
      if (!objs.some((o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === n))
        externalSecrets.add(`pvc:${n}`);
    }
  }
  const envNames = new Set();
  for (const e of c.env || []) {
    if (!ENV_NAME.test(e.name)) err(dep, `bad environment variable name "${e.name}"`);
    if (envNames.has(e.name)) err(dep, `environment variable ${e.name} set twice`);
    envNames.add(e.name);
    const ref = e.valueFrom && e.valueFrom.secretKeyRef;
    if (ref) checkSecretKey(ref.name, ref.key, `env ${e.name}`);
  }

  // Service, Ingress, HPA, PDB, ServiceMonitor
  for (const s of byKind("Service")) {
    if (!matches(s.spec.selector, podLabels) || !Object.keys(s.spec.selector || {}).length)
      err(s, "selector does not select the Deployment's pods");
    for (const p of s.spec.ports || [])
      if (typeof p.targetPort === "string" && !ports.has(p.targetPort)) err(s, `targetPort "${p.targetPort}" is not a container port`);
  }
  for (const ing of byKind("Ingress")) {
    for (const rule of ing.spec.rules || [])
      for (const p of (rule.http && rule.http.paths) || []) {
        const b = p.backend.service;
        const svc = byKind("Service").find((s) => s.metadata.name === b.name);
        if (!svc) err(ing, `backend service ${b.name} is not rendered`);
        else if (b.port.name && !(svc.spec.ports || []).some((sp) => sp.name === b.port.name))
          err(ing, `service ${b.name} has no port "${b.port.name}"`);
        else if (b.port.name === "metrics") err(ing, "exposes the metrics port");
      }
  }
  const hpas = byKind("HorizontalPodAutoscaler");
  for (const h of hpas) {
    const r = h.spec.scaleTargetRef;
    if (r.kind !== "Deployment" || r.name !== dep.metadata.name) err(h, "scaleTargetRef is not the Deployment");
    if (dep.spec.replicas !== undefined) err(dep, "sets replicas while an HPA scales it");
    for (const m of h.spec.metrics || [])
      if (m.resource && !(c.resources && c.resources.requests && c.resources.requests[m.resource.name]))
        err(h, `targets ${m.resource.name} utilization but the container requests no ${m.resource.name}`);
    if (h.spec.minReplicas > h.spec.maxReplicas) err(h, "minReplicas > maxReplicas");
  }
  for (const p of byKind("PodDisruptionBudget"))
    if (!matches(p.spec.selector.matchLabels, podLabels)) err(p, "selector does not match the pods");
  for (const sm of byKind("ServiceMonitor")) {
    const svc = byKind("Service").find((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
    if (!svc) err(sm, "selects no rendered Service");
    else for (const ep of sm.spec.endpoints || [])
      if (!(svc.spec.ports || []).some((sp) => sp.name === ep.port)) err(sm, `Service has no port "${ep.port}"`);
  }

  // lfsgate's configuration
  let cm, config;
  try {
    ({ cm, config } = lfsgateConfig(objs));
  } catch (e) {
    errs.push(e.message);
    return errs;
  }
  if (!isPlainObject(config)) {
    err(cm, "lfsgate.yaml is not a mapping");
    return errs;
  }
  const leaves = leafVariables(config);
  for (const e of c.env || [])
    if (e.name.startsWith("GIFTLESS_CONFIG_") && !["GIFTLESS_CONFIG_FILE", "GIFTLESS_CONFIG_STR"].includes(e.name) && !leaves.has(e.name))
      err(dep, `env ${e.name} overrides no leaf of the config (lfsgate only replaces existing leaves)`);
  const cmText = JSON.stringify(cm.data);
  for (const s of byKind("Secret"))
    for (const [k, v] of Object.entries(s.data || {})) {
      const plain = Buffer.from(v, "base64").toString("utf8");
      if (plain.length >= 8 && cmText.includes(plain)) err(cm, `contains the value of Secret ${s.metadata.name} key ${k}`);
    }
  const mounts = (c.volumeMounts || []).map((m) => ({ ...m, volume: volumes.get(m.name) || {} }));
  const mountOf = (p) => mounts.filter((m) => under(p, m.mountPath)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const paths = [];
  (function walk(v, where) {
    if (Array.isArray(v)) v.forEach((e, n) => walk(e, `${where}[${n}]`));
    else if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) walk(x, where ? `${where}.${k}` : k);
    else if (typeof v === "string" && v.startsWith("/") && /(_file|_dir|\.path)$/.test(where)) paths.push([where, v]);
  })(config, "");
  const cfgMount = mountOf((c.args || []).find((a) => a.startsWith("/")) || "/nonexistent");
  if (!cfgMount || !cfgMount.volume.configMap) err(dep, "the --config file is not in the ConfigMap mount");
  for (const [where, p] of paths) {
    const m = mountOf(p);
    const writable = /spool_dir$|storage_options\.path$/.test(where);
    if (!m) err(cm, `${where}: ${p} is not inside any volume mount`);
    else if (writable && (m.readOnly || m.volume.secret || m.volume.configMap)) err(cm, `${where}: ${p} is on a read-only mount`);
    else if (/_file$/.test(where) && m.volume.secret) {
      const item = (m.volume.secret.items || []).find((it) => path.posix.join(m.mountPath, it.path) === p);
      if (m.volume.secret.items && !item) err(cm, `${where}: ${p} is not an item of the Secret mount`);
    }
  }
  const shutdown = Number((config.SERVER || {}).shutdown_timeout || 0);
  const cmd = c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.exec && c.lifecycle.preStop.exec.command;
  const preStop = cmd && cmd[0] === "sleep" ? Number(cmd[1]) : 0;
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  if (!(grace > preStop + shutdown))
    err(dep, `terminationGracePeriodSeconds ${grace} is not above preStop ${preStop} s + SERVER.shutdown_timeout ${shutdown} s`);
  const ann = pod.metadata.annotations || {};
  if (!/^[0-9a-f]{64}$/.test(ann["checksum/config"] || "")) err(dep, "no checksum/config annotation on the pod template");
  return errs;
}

// ---------------------------------------------------------------- pod emulation

function runPod(objs, opts) {
  const dep = objs.find((o) => o.kind === "Deployment");
  const spec = dep.spec.template.spec;
  const c = spec.containers.find((x) => x.name === "lfsgate");
  const volumes = new Map((spec.volumes || []).map((v) => [v.name, v]));
  const root = path.resolve(opts.root);
  const mounts = (c.volumeMounts || []).map((m) => m.mountPath).sort((a, b) => b.length - a.length);
  const rebase = (p) => (typeof p === "string" && p.startsWith("/") && mounts.some((m) => under(p, m)) ? root + p : p);
  const secret = (name, key) => {
    const given = opts.secrets.get(`${name}/${key}`);
    if (given !== undefined) return given;
    const v = secretValue(objs, name, key);
    if (v === undefined || v === null) throw new Error(`Secret ${name} key ${key}: not rendered; pass --secret ${name}/${key}=...`);
    return v;
  };
  for (const m of c.volumeMounts || []) {
    const v = volumes.get(m.name);
    const dir = root + m.mountPath;
    fs.mkdirSync(dir, { recursive: true });
    if (v.configMap) {
      const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === v.configMap.name);
      const items = v.configMap.items || Object.keys(cm.data || {}).map((k) => ({ key: k, path: k }));
      for (const it of items) {
        let text = cm.data[it.key];
        if (it.key === "lfsgate.yaml") {
          // the mount paths move under root; nothing else changes
          const rewrite = (x) => Array.isArray(x) ? x.map(rewrite)
            : isPlainObject(x) ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, rewrite(y)]))
            : rebase(x);
          text = YAML.stringify(rewrite(YAML.parse(text)));
        }
        fs.writeFileSync(path.join(dir, it.path), text);
      }
    } else if (v.secret) {
      const items = v.secret.items;
      if (!items) throw new Error(`volume ${v.name}: a Secret mount without items is not emulated`);
      for (const it of items) fs.writeFileSync(path.join(dir, it.path), secret(v.secret.secretName, it.key), { mode: 0o440 });
    }
  }
  const env = { PATH: process.env.PATH };
  for (const e of c.env || []) {
    if (e.value !== undefined) env[e.name] = rebase(String(e.value));
    else if (e.valueFrom && e.valueFrom.secretKeyRef) env[e.name] = secret(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else throw new Error(`env ${e.name}: only value and secretKeyRef are emulated`);
  }
  for (const k of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"]) if (process.env[k]) env[k] = process.env[k];
  const args = [...(c.command || []).slice(1), ...(c.args || [])].map(rebase);
  const argv = [...args, "--check-config", ...opts.extra];
  const r = childProcess.spawnSync(opts.bin, argv, { env, encoding: "utf8" });
  if (r.error) throw r.error;
  process.stdout.write(`$ ${Object.entries(env).filter(([k]) => k !== "PATH").map(([k]) => `${k}=…`).join(" ")} lfsgate ${argv.join(" ")}\n`);
  process.stdout.write(r.stdout);
  process.stdout.write(r.stderr);
  return r.status === null ? 1 : r.status;
}

// ---------------------------------------------------------------- main

function main(argv) {
  const [cmd, file, ...rest] = argv;
  if (!cmd || !file) {
    process.stderr.write("usage: check.js validate|config|query|pod MANIFESTS.yaml [options]\n");
    return 2;
  }
  const objs = loadManifests(file);
  if (cmd === "config") {
    process.stdout.write(JSON.stringify(lfsgateConfig(objs).config, null, 2) + "\n");
    return 0;
  }
  if (cmd === "query") {
    let c;
    try {
      c = lfsgateConfig(objs).config;
    } catch (e) {
      c = undefined;
    }
    const k = (kind) => objs.find((o) => o.kind === kind);
    for (const expr of rest) {
      const v = new Function("c", "k", `return (${expr});`)(c, k);
      console.log(v === undefined ? "" : JSON.stringify(v));
    }
    return 0;
  }
  if (cmd === "validate") {
    let bad = 0;
    for (const o of objs) {
      const errs = validateSchema(o);
      for (const e of errs) console.log(`error: ${id(o)}: ${e}`);
      if (errs.length) bad++;
      else console.log(`ok ${id(o)}`);
    }
    const cross = crossChecks(objs);
    for (const e of cross) console.log(`error: ${e}`);
    return bad || cross.length ? 1 : 0;
  }
  if (cmd === "pod") {
    const opts = { secrets: new Map(), extra: [], bin: null, root: null };
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i];
      if (a === "--") { opts.extra = rest.slice(i + 1); break; }
      if (a === "--bin") opts.bin = rest[++i];
      else if (a === "--root") opts.root = rest[++i];
      else if (a === "--secret") {
        const s = rest[++i], eq = s.indexOf("=");
        const v = s.slice(eq + 1);
        opts.secrets.set(s.slice(0, eq), v.startsWith("@") ? fs.readFileSync(v.slice(1), "utf8") : v);
      } else throw new Error(`unknown option ${a}`);
    }
    if (!opts.bin || !opts.root) throw new Error("pod: --bin and --root are required");
    return runPod(objs, opts);
  }
  process.stderr.write(`unknown command ${cmd}\n`);
  return 2;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.log(`error: ${e.message}`);
  process.exitCode = 1;
}
