import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACCEPTED_COMMAND, Edit, Position, SuggestionEvent, SuggestionTracker, characters, suggestionId } from '../src/telemetry';

const URI = 'file:///ws/main.py';
const at = (line: number, character: number): Position => ({ line, character });
const insert = (p: Position, text: string): Edit => ({ range: { start: p, end: p }, text });
const replace = (start: Position, end: Position, text: string): Edit => ({ range: { start, end }, text });

function tracker(): { tracker: SuggestionTracker; sent: SuggestionEvent[] } {
  const sent: SuggestionEvent[] = [];
  return { tracker: new SuggestionTracker((e) => sent.push(e)), sent };
}

test('the id comes from the ghostline command only', () => {
  assert.equal(suggestionId({ command: ACCEPTED_COMMAND, arguments: ['abc', 3] }), 'abc');
  assert.equal(suggestionId({ command: 'other.command', arguments: ['abc'] }), undefined);
  assert.equal(suggestionId({ command: ACCEPTED_COMMAND, arguments: [42] }), undefined);
  assert.equal(suggestionId({ command: ACCEPTED_COMMAND }), undefined);
  assert.equal(suggestionId(undefined), undefined);
});

test('characters are counted as the server counts them (code points)', () => {
  assert.equal(characters('abc'), 3);
  assert.equal(characters('x = "😀"'), 7);
});

test('a suggestion is reported shown once, however often its rest comes back', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(3, 4), 'return len(lines)');
  t.edited(URI, [insert(at(3, 4), 'r')]); // typed its first character
  t.shown('s1', URI, at(3, 5), 'eturn len(lines)'); // the server's answer for the rest
  assert.deepEqual(sent, [{ id: 's1', event: 'shown' }]);
  assert.deepEqual(t.following?.at, at(3, 5));
});

test('typing the suggestion character by character is neither accept nor typed over', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(0, 2), 'abc');
  t.edited(URI, [insert(at(0, 2), 'a')]);
  t.edited(URI, [insert(at(0, 3), 'b')]);
  assert.deepEqual(t.following?.rest, 'c');
  t.edited(URI, [insert(at(0, 4), 'c')]); // the last one ends it quietly
  assert.equal(t.following, undefined);
  assert.deepEqual(sent, [{ id: 's1', event: 'shown' }]);
});

test('accepting a word then a line is partial, each with its characters', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(5, 4), 'return total\n    # done');
  t.edited(URI, [insert(at(5, 4), 'return ')]);
  t.edited(URI, [insert(at(5, 11), 'total\n')]);
  assert.deepEqual(t.following?.at, at(6, 0));
  assert.equal(t.following?.rest, '    # done');
  assert.deepEqual(sent.slice(1), [
    { id: 's1', event: 'partial', acceptedChars: 7 },
    { id: 's1', event: 'partial', acceptedChars: 6 },
  ]);
});

test('the whole rest inserted at once is left to the item command', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(2, 0), 'x = 1');
  t.edited(URI, [insert(at(2, 0), 'x = 1')]);
  assert.equal(t.following, undefined);
  t.edited(URI, [insert(at(2, 5), ' # typed later')]); // nothing is followed any more
  assert.deepEqual(sent, [{ id: 's1', event: 'shown' }]);
});

test('an accept that rewrites the part already typed is still the same insertion', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(1, 8), 'join(a, b)');
  t.edited(URI, [insert(at(1, 8), 'j')]);
  // VS Code replaces "j" (1:8-1:9) with the whole original suggestion.
  t.edited(URI, [replace(at(1, 8), at(1, 9), 'join(a, ')]);
  assert.deepEqual(sent.slice(1), [{ id: 's1', event: 'partial', acceptedChars: 7 }]);
  t.edited(URI, [replace(at(1, 8), at(1, 16), 'join(a, b)')]);
  assert.equal(t.following, undefined);
  assert.equal(sent.length, 2);
});

test('typing something else on the line is typed over, once', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(4, 10), 'path)');
  t.edited(URI, [insert(at(4, 10), 'q')]);
  t.edited(URI, [insert(at(4, 11), 'x')]);
  assert.deepEqual(sent, [{ id: 's1', event: 'shown' }, { id: 's1', event: 'typedOver' }]);
});

test('deleting on the line, or an edit that spans it, is typed over', () => {
  for (const edit of [replace(at(4, 9), at(4, 10), ''), replace(at(2, 0), at(6, 0), 'y\n')]) {
    const { tracker: t, sent } = tracker();
    t.shown('s1', URI, at(4, 10), 'path)');
    t.edited(URI, [edit]);
    assert.deepEqual(sent.at(-1), { id: 's1', event: 'typedOver' });
  }
});

test('edits on other lines or in other documents do not count as typed over', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(4, 10), 'path)');
  t.edited('file:///ws/other.py', [insert(at(4, 10), 'q')]);
  assert.ok(t.following, 'another document leaves it on screen');
  t.edited(URI, [insert(at(9, 0), 'q')]);
  assert.equal(t.following, undefined);
  assert.deepEqual(sent, [{ id: 's1', event: 'shown' }]);
});

test('a new suggestion replaces the one followed', () => {
  const { tracker: t, sent } = tracker();
  t.shown('s1', URI, at(0, 0), 'abc');
  t.shown('s2', URI, at(7, 0), 'xyz');
  t.edited(URI, [insert(at(7, 0), 'xy')]);
  t.edited(URI, [insert(at(0, 0), 'q')]); // s1 left the screen when s2 came: not typed over
  assert.deepEqual(sent, [{ id: 's1', event: 'shown' }, { id: 's2', event: 'shown' },
    { id: 's2', event: 'partial', acceptedChars: 2 }]);
});

test('the ids remembered as shown are bounded', () => {
  const sent: SuggestionEvent[] = [];
  const t = new SuggestionTracker((e) => sent.push(e), 2);
  for (const id of ['a', 'b', 'c', 'a']) t.shown(id, URI, at(0, 0), 'x');
  assert.deepEqual(sent.map((e) => e.id), ['a', 'b', 'c', 'a']); // "a" was forgotten, so it counts again
});
