// Builds the app into dist/: hashed, minified ES modules and CSS under dist/assets/, and
// dist/index.html naming them. hls.js is split into its own chunk, loaded by the watch page only.
import { build } from 'esbuild';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

const root = path.dirname(new URL(import.meta.url).pathname);
const dist = path.join(root, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(path.join(dist, 'assets'), { recursive: true });

const result = await build({
  entryPoints: { app: path.join(root, 'src/main.js') },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2020'],
  minify: true,
  sourcemap: false,
  outdir: path.join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs);
const entry = outputs.find(([, o]) => o.entryPoint && o.entryPoint.endsWith('src/main.js'));
if (!entry) throw new Error('no entry output');
const [jsFile, jsMeta] = entry;
const cssFile = jsMeta.cssBundle;
const href = (file) => '/' + path.relative(dist, path.join(root, file)).split(path.sep).join('/');

const template = await readFile(path.join(root, 'index.html'), 'utf8');
const page = template
  .replace('<!-- styles -->', cssFile ? `<link rel="stylesheet" href="${href(cssFile)}">` : '')
  .replace('<!-- scripts -->', `<script type="module" src="${href(jsFile)}"></script>`);
await writeFile(path.join(dist, 'index.html'), page);

let total = 0;
for (const [file, meta] of outputs) {
  total += meta.bytes;
  console.log(`${path.relative(root, file).padEnd(40)} ${(meta.bytes / 1024).toFixed(1)} KiB`);
}
console.log(`dist/index.html built (${(total / 1024).toFixed(1)} KiB of assets)`);
