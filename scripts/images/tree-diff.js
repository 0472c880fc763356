// node tree-diff.js BASE FULL: prints (one per line, as ./path) each entry of the directory
// FULL that BASE lacks or has otherwise (type, mode, owner, content, link target): the files a
// layer over BASE needs to make FULL. Entries BASE has and FULL lacks are not listed: FULL is
// BASE plus installed packages, which add and change files but leave the base's in place.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [base, full] = process.argv.slice(2);
if (!base || !full) throw new Error('usage: node tree-diff.js BASE FULL (scripts/images/build.sh runs it)');

function same(rel) {
  const [x, y] = [fs.lstatSync(path.join(base, rel), { throwIfNoEntry: false }), fs.lstatSync(path.join(full, rel))];
  if (!x || x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid) return false;
  if (y.isSymbolicLink()) return fs.readlinkSync(path.join(base, rel)) === fs.readlinkSync(path.join(full, rel));
  if (y.isFile()) return x.size === y.size && fs.readFileSync(path.join(base, rel)).equals(fs.readFileSync(path.join(full, rel)));
  return x.rdev === y.rdev;
}

const out = [];
(function walk(rel) {
  for (const name of fs.readdirSync(path.join(full, rel)).sort()) {
    const r = path.join(rel, name);
    if (!same(r)) out.push(`./${r}`);
    if (fs.lstatSync(path.join(full, r)).isDirectory()) walk(r);
  }
})('');
process.stdout.write(out.map((p) => `${p}\n`).join(''));
