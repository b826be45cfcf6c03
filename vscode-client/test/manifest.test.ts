import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const sources = fs.readdirSync(path.join(root, 'src')).map((f) => fs.readFileSync(path.join(root, 'src', f), 'utf8')).join('\n');

test('every contributed command is registered, and every registered one contributed', () => {
  const contributed = manifest.contributes.commands.map((c: { command: string }) => c.command).sort();
  const registered = [...sources.matchAll(/registerCommand\('([\w.]+)'/g)].map((m) => m[1]).sort();
  assert.deepEqual(registered, contributed);
  for (const c of manifest.contributes.commands) assert.equal(c.category, 'ghostline');
});

test('the required commands are there', () => {
  const titles = manifest.contributes.commands.map((c: { title: string }) => `ghostline: ${c.title}`);
  for (const t of ['ghostline: Find Similar Code', 'ghostline: Toggle Completions', 'ghostline: Show Server Log']) {
    assert.ok(titles.includes(t), t);
  }
});
