// Builds a JavaScript weir plugin (an ES module, usually app.js) into a component:
//
//   node tools/js/build.mjs --wit WIT_DIR --world WORLD --out OUT.wasm APP.js
//
// 1. rolldown bundles APP.js and what it imports (the SDK at guest-sdk/js/weir_guest.js, by a
//    relative or absolute path) into one ES module: componentize-js only sees files under the
//    directory it is started in, so imports from elsewhere would not load.
//    For the `batch-sink` world the bundle's entry also imports the host's
//    `weir:plugin/outputs@0.1.0` and hands it to the SDK (globalThis.__weirOutputs), so app.js
//    never imports it and runs under plain node too.
// 2. componentize-js (SpiderMonkey, no AOT: AOT downloads weval) turns the bundle into a
//    component of WORLD, without wasi:http (`http`, `fetch-event`), which weir does not give.
// 3. Unless WEIR_JS_NO_FAST_LISTS=1: the generated bindings move `list<bool>` values one element
//    at a time (1 µs each inside Wasm); they are patched to copy a Uint8Array in one call (see
//    patchBindings). A binding that does not match the expected text is left as it was.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { rolldown } from 'rolldown';
import { componentize } from '@bytecodealliance/componentize-js';
// The same module instance componentize.js imports (the package's exports hide lib/).
const { splicer } = await import(
  new URL('./node_modules/@bytecodealliance/componentize-js/lib/spidermonkey-embedding-splicer.js', import.meta.url)
);

const { values: opts, positionals } = parseArgs({
  options: { wit: { type: 'string' }, world: { type: 'string' }, out: { type: 'string' } },
  allowPositionals: true,
});
if (!opts.wit || !opts.world || !opts.out || positionals.length !== 1) {
  console.error('usage: node tools/js/build.mjs --wit WIT_DIR --world WORLD --out OUT.wasm APP.js');
  process.exit(2);
}
const app = resolve(positionals[0]);
const out = resolve(opts.out);
const wit = resolve(opts.wit);

export function patchBindings(js) {
  let patched = 0;
  // Lowering (plugin -> host): `for (...) { const e = vec[i]; ...setInt8(base + 0, e ? 1 : 0, true); }`.
  js = js.replace(
    /for \(let i = 0; i < (vec\d+)\.length; i\+\+\) \{\s*const e = \1\[i\];\s*const base = (result\d+) \+ i \* 1;dataView\(\$memory\)\.setInt8\(base \+ 0, e \? 1 : 0, true\);\s*\}/g,
    (_, vec, res) => {
      patched++;
      return (
        // The plugin's arrays come from another realm than the bindings' (instanceof fails):
        // any non-Array with one byte per element (a Uint8Array of 0/1) is copied as bytes.
        `if (!Array.isArray(${vec}) && ${vec}.BYTES_PER_ELEMENT === 1) { new Uint8Array($memory.buffer, ${res}, ${vec}.length).set(new Uint8Array(${vec}.buffer, ${vec}.byteOffset, ${vec}.length)); } ` +
        `else for (let i = 0; i < ${vec}.length; i++) { dataView($memory).setInt8(${res} + i, ${vec}[i] ? 1 : 0, true); }`
      );
    },
  );
  // Lifting (host -> plugin): `var result = []; for (...) { ...getUint8...; result.push(!!bool); }`.
  js = js.replace(
    /var (result\d+) = \[\];\s*for \(let i = 0; i < (len\d+); i\+\+\) \{\s*const base = (base\d+) \+ i \* 1;\s*var (bool\d+) = dataView\(\$memory\)\.getUint8\(base \+ 0, true\);\s*\1\.push\(!!\4\);\s*\}/g,
    (_, res, len, base) => {
      patched++;
      return `var ${res} = new Uint8Array($memory.buffer, ${base}, ${len}).slice();`;
    },
  );
  return { js, patched };
}

const scratch = await mkdtemp(join(tmpdir(), 'weir-js-'));
try {
  // 1. One ES module.
  let input = app;
  if (opts.world === 'batch-sink') {
    input = join(scratch, 'entry.js');
    await writeFile(
      input,
      `import * as outputs from 'weir:plugin/outputs@0.1.0';\n` +
        `globalThis.__weirOutputs = outputs;\n` +
        `export * from ${JSON.stringify(app)};\n`,
    );
  }
  const bundle = await rolldown({
    input,
    external: [/^weir:/, /^wasi:/],
    logLevel: 'warn',
  });
  const bundled = join(scratch, 'bundle.js');
  await bundle.write({ file: bundled, format: 'esm' });
  await bundle.close();

  // 3. Faster list<bool> bindings.
  if (process.env.WEIR_JS_NO_FAST_LISTS !== '1') {
    const splice = splicer.spliceBindings;
    splicer.spliceBindings = (...args) => {
      const out = splice(...args);
      const { js, patched } = patchBindings(out.jsBindings);
      if (process.env.WEIR_JS_DEBUG) console.error(`build.mjs: ${patched} list<bool> bindings patched`);
      return { ...out, jsBindings: js };
    };
  }

  // 2. The component (componentize-js maps the directory it runs in; run it in the scratch dir).
  process.chdir(scratch);
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: wit,
    worldName: opts.world,
    disableFeatures: ['http', 'fetch-event'],
  });
  await writeFile(out, component);
} finally {
  await rm(scratch, { recursive: true, force: true });
}
