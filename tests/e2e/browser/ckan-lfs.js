// tests/e2e/browser/ckan-lfs.js: a portal page's upload code for test_browser.sh. It makes
// the requests the CKAN JavaScript SDK makes (datopian/ckan-client-js, lib/lfs-client.js and
// lib/util/ckan-upload-api.js; listed in shared/design/protocol.md), with fetch instead of
// axios:
//   POST {lfsServerUrl}/{org}/{dataset}/objects/batch   (the legacy route)
//        Accept + Content-Type: application/vnd.git-lfs+json, Authorization: Bearer <jwt>,
//        {operation: "upload", transfers: ["multipart-basic", "basic"],
//         ref: {name: "refs/heads/master"}, objects: [{oid, size, extra: {filename}}]}
//   basic:           PUT href, headers {"Content-type": file.type, ...action.header}, the file
//   multipart-basic: init (if any), each part (PUT the slice [pos, pos + size) with the
//                    part's header), commit (method/body of the action; the SDK reads
//                    `commit.headers`, a key the spec does not have, so it sends no action
//                    header), in that order
//   POST verify.href, Accept + Content-Type: application/vnd.git-lfs+json + action.header,
//        {oid, size}
// (The SDK's multipart verify reads an undefined `this._verifyAction` and throws; this page
// sends the verify the spec and the SDK's basic adapter describe.)
// Then, to check the result: a fresh download batch and a GET of its href.
// Every request and its outcome is recorded in the returned trace; test_browser.sh asserts.
'use strict';

(function () {
  const LFS = 'application/vnd.git-lfs+json';
  const files = {}; // oid -> File, kept for the download comparison

  function log(msg, cls) {
    const line = document.createElement('div');
    if (cls) line.className = cls;
    line.textContent = msg;
    document.getElementById('log').appendChild(line);
  }

  function hex(buf) {
    return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function sha256(blob) {
    return hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  }

  // A generated file: random bytes (getRandomValues fills at most 64 KiB per call).
  function makeFile(size, name, type) {
    const bytes = new Uint8Array(size);
    for (let off = 0; off < size; off += 65536) {
      crypto.getRandomValues(bytes.subarray(off, Math.min(size, off + 65536)));
    }
    return new File([bytes], name, { type });
  }

  function shortUrl(url) {
    const u = new URL(url);
    return u.origin + u.pathname + (u.search ? '?…' : '');
  }

  // One request; the trace gets {step, method, url, request_headers, status, headers, body}.
  // Network failures (a CORS refusal is one) are recorded with `error` and rethrown.
  async function send(trace, step, method, url, headers, body, want) {
    const entry = { step, method, url, request_headers: headers || {} };
    trace.push(entry);
    let res;
    try {
      res = await fetch(url, { method, headers: headers || {}, body: body === undefined ? null : body });
    } catch (e) {
      entry.error = `${e.name}: ${e.message}`;
      log(`${step}: ${method} ${shortUrl(url)} -> ${entry.error}`, 'bad');
      throw e;
    }
    entry.status = res.status;
    entry.headers = {};
    res.headers.forEach((v, k) => { entry.headers[k] = v; });
    if (want === 'bytes') {
      entry.bytes = new Uint8Array(await res.arrayBuffer());
    } else {
      entry.body = await res.text();
    }
    log(`${step}: ${method} ${shortUrl(url)} -> ${res.status}`, res.ok ? 'ok' : 'bad');
    return entry;
  }

  function json(entry) {
    try {
      return JSON.parse(entry.body);
    } catch (e) {
      return null;
    }
  }

  function batchRequest(trace, step, cfg, operation, oid, size, filename) {
    const url = `${cfg.lfsServerUrl}/${cfg.org}/${cfg.dataset}/objects/batch`;
    const body = {
      operation,
      transfers: cfg.transfers || ['multipart-basic', 'basic'],
      ref: { name: 'refs/heads/master' },
      objects: [{ oid, size, extra: { filename } }],
    };
    const headers = { Accept: LFS, 'Content-Type': LFS, Authorization: `Bearer ${cfg.token}` };
    return send(trace, step, 'POST', url, headers, JSON.stringify(body));
  }

  async function verify(trace, action, oid, size) {
    const headers = { Accept: LFS, 'Content-Type': LFS, ...(action.header || {}) };
    return send(trace, 'verify', 'POST', action.href, headers, JSON.stringify({ oid, size }));
  }

  async function basicUpload(trace, actions, file) {
    if (actions.upload) {
      const { href, header } = actions.upload;
      const headers = { 'Content-type': file.type || 'application/octet-stream', ...(header || {}) };
      await send(trace, 'upload', 'PUT', href, headers, file);
    }
  }

  async function multipartUpload(trace, actions, file) {
    if (actions.init) {
      const a = actions.init;
      await send(trace, 'init', a.method || 'POST', a.href, a.header || {}, a.body || null);
    }
    const parts = actions.parts || [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      const pos = p.pos || 0;
      const chunk = p.size == null ? file.slice(pos) : file.slice(pos, pos + p.size);
      await send(trace, `part ${i + 1}/${parts.length}`, p.method || 'PUT', p.href, p.header || {}, chunk);
    }
    if (actions.commit) {
      const a = actions.commit;
      await send(trace, 'commit', a.method || 'POST', a.href, a.headers || {}, a.body || null);
    }
  }

  // upload(cfg): generate cfg.size bytes named cfg.filename (type cfg.type), hash them with
  // WebCrypto, batch, transfer, verify. Returns {oid, size, transfer, action_names, trace, error}.
  async function upload(cfg) {
    const trace = [];
    const out = { trace };
    try {
      const file = makeFile(cfg.size, cfg.filename, cfg.type);
      const t0 = performance.now();
      out.oid = await sha256(file);
      out.size = file.size;
      files[out.oid] = file;
      log(`${file.name}: ${file.size} bytes, sha256 ${out.oid} (WebCrypto, ${Math.round(performance.now() - t0)} ms)`);
      const b = await batchRequest(trace, 'batch upload', cfg, 'upload', out.oid, file.size, file.name);
      const answer = json(b);
      if (b.status !== 200 || !answer) throw new Error(`'batch' request failed: ${b.status}`);
      out.transfer = answer.transfer;
      const obj = answer.objects[0];
      out.object_error = obj.error || null;
      out.action_names = Object.keys(obj.actions || {});
      if (!obj.actions) return out;
      if (answer.transfer === 'basic') {
        await basicUpload(trace, obj.actions, file);
      } else if (answer.transfer === 'multipart-basic') {
        await multipartUpload(trace, obj.actions, file);
      } else {
        throw new Error(`Unknown negotiated transfer mode: ${answer.transfer}`);
      }
      if (obj.actions.verify) await verify(trace, obj.actions.verify, out.oid, file.size);
    } catch (e) {
      out.error = `${e.name}: ${e.message}`;
    }
    return out;
  }

  // download(cfg, oid): a fresh batch for the object uploaded before, then GET its href.
  // Returns {status, content_disposition, content_type, size, sha256, same_bytes, trace, error}.
  async function download(cfg, oid) {
    const trace = [];
    const out = { trace };
    try {
      const file = files[oid];
      const b = await batchRequest(trace, 'batch download', { ...cfg, transfers: ['basic'] }, 'download', oid, file.size, file.name);
      const answer = json(b);
      if (b.status !== 200 || !answer) throw new Error(`'batch' request failed: ${b.status}`);
      const a = (answer.objects[0].actions || {}).download;
      if (!a) throw new Error(`no download action: ${b.body}`);
      out.href = a.href;
      const g = await send(trace, 'download', 'GET', a.href, a.header || {}, undefined, 'bytes');
      out.status = g.status;
      out.content_disposition = g.headers['content-disposition'] || null;
      out.content_type = g.headers['content-type'] || null;
      out.size = g.bytes.length;
      out.sha256 = await sha256(new Blob([g.bytes]));
      const orig = new Uint8Array(await file.arrayBuffer());
      out.same_bytes = orig.length === g.bytes.length && orig.every((v, i) => v === g.bytes[i]);
      delete g.bytes;
      log(`downloaded ${out.size} bytes, same bytes: ${out.same_bytes}, Content-Disposition: ${out.content_disposition}`,
        out.same_bytes ? 'ok' : 'bad');
    } catch (e) {
      out.error = `${e.name}: ${e.message}`;
    }
    return out;
  }

  // tryBatch(cfg): one upload batch for a small object, as the SDK sends it; reports whether
  // the browser let the page see the answer: {rejected, error, status, message, headers}.
  async function tryBatch(cfg) {
    const trace = [];
    const oid = await sha256(new Blob(['probe']));
    try {
      const b = await batchRequest(trace, 'batch', cfg, 'upload', oid, 5, 'probe.txt');
      const answer = json(b);
      return { rejected: false, status: b.status, message: answer && answer.message, headers: b.headers, trace };
    } catch (e) {
      return { rejected: true, error: `${e.name}: ${e.message}`, error_name: e.name, trace };
    }
  }

  window.lfsE2E = { upload, download, tryBatch, log };
  document.getElementById('origin').textContent = `This page: ${location.origin}`;
})();
