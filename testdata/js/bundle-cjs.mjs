// bundle-cjs.mjs writes to stdout one browser script holding a CommonJS
// module of node_modules and everything it requires, exposed as a global.
// The published PondSocket client ships CommonJS only; the browser tests
// load its SSEClient this way, unchanged, without a bundler dependency.
//
//   node bundle-cjs.mjs @eleven-am/pondsocket-client/browser/sseClient.js PondSocketSSE > client.js
//
// Only literal require("…") calls of relative paths and packages are
// followed (what the client's compiled TypeScript emits); a Node built-in
// stops the run.

import { createRequire, isBuiltin } from 'node:module';
import { readFileSync } from 'node:fs';

const [entry, name] = process.argv.slice(2);
if (!entry || !name) {
  process.stderr.write('usage: node bundle-cjs.mjs MODULE GLOBAL_NAME\n');
  process.exit(2);
}

const ids = new Map(); // file → index
const mods = [];
const REQ = /\brequire\(\s*["']([^"']+)["']\s*\)/g;

function add(file) {
  if (ids.has(file)) return ids.get(file);
  const id = mods.length;
  ids.set(file, id);
  const mod = { file, src: readFileSync(file, 'utf8'), deps: {} };
  mods.push(mod);
  const req = createRequire(file);
  for (const [, spec] of mod.src.matchAll(REQ)) {
    if (isBuiltin(spec)) throw new Error(`${file} requires the Node built-in ${spec}`);
    mod.deps[spec] = add(req.resolve(spec));
  }
  return id;
}

const root = add(createRequire(import.meta.url).resolve(entry));
const out = [`// ${entry} and its dependencies as CommonJS modules (testdata/js/bundle-cjs.mjs)`, '(() => {', 'const defs = ['];
for (const m of mods) {
  out.push(`// ${m.file.slice(m.file.lastIndexOf('node_modules/') + 13)}`);
  out.push(`[${JSON.stringify(m.deps)}, function (module, exports, require) {\n${m.src}\n}],`);
}
out.push(`];
const cache = [];
function load(id) {
  if (cache[id]) return cache[id].exports;
  const module = { exports: {} };
  cache[id] = module;
  const [deps, fn] = defs[id];
  fn.call(module.exports, module, module.exports, (spec) => {
    if (!(spec in deps)) throw new Error('not bundled: ' + spec);
    return load(deps[spec]);
  });
  return module.exports;
}
globalThis[${JSON.stringify(name)}] = load(${root});
})();`);
process.stdout.write(out.join('\n') + '\n');
