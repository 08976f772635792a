// Lists the npm packages esbuild put into the bundle (from its metafile), with their licenses,
// as continuation lines of a Debian copyright field.
import { readFileSync } from 'node:fs';
import process from 'node:process';

const meta = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const packages = new Map();
for (const input of Object.keys(meta.inputs)) {
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!match) continue;
  const manifest = JSON.parse(readFileSync(`${match[1]}/package.json`, 'utf8'));
  packages.set(`${manifest.name} ${manifest.version}`, typeof manifest.license === 'string' ? manifest.license : 'see the package');
}
for (const [name, license] of [...packages].sort(([a], [b]) => a.localeCompare(b))) process.stdout.write(` ${name}: ${license}\n`);
