import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { previewLine, rankSimilar } from '../src/similar';

const range = (line: number) => ({ start: { line, character: 0 }, end: { line: line + 3, character: 0 } });
const relative = (uri: string) => uri.replace('file:///ws/', '');

test('items are ranked by score and labelled with it', () => {
  const entries = rankSimilar({
    items: [
      { uri: 'file:///ws/a.py', range: range(4), score: 0.512, preview: 'def a():\n    pass' },
      { uri: 'file:///ws/b.py', range: range(0), score: 0.987, preview: '\n  def b(x):\n' },
    ],
  }, relative);
  assert.deepEqual(entries.map((e) => e.label), ['0.99  def b(x):', '0.51  def a():']);
  assert.deepEqual(entries.map((e) => e.description), ['b.py:1', 'a.py:5']);
});

test('malformed results and items are dropped', () => {
  assert.deepEqual(rankSimilar(null, relative), []);
  assert.deepEqual(rankSimilar({ items: 'no' }, relative), []);
  const entries = rankSimilar({ items: [{ uri: 'file:///ws/a.py', score: 1 }, { uri: 'file:///ws/c.py', range: range(1), score: 0.3 }] }, relative);
  assert.deepEqual(entries.map((e) => e.description), ['c.py:2']);
  assert.equal(entries[0].label, '0.30  ');
});

test('previews are one line, shortened', () => {
  assert.equal(previewLine('x'.repeat(100), 10), `${'x'.repeat(9)}…`);
  assert.equal(previewLine('\n\n'), '');
});
