// What became of the suggestion on screen, for the server's local telemetry log (the
// `ghostline/suggestionEvent` notification; nothing leaves the machine).
// VS Code's stable API tells only of a whole accept: it runs the item's command, which goes
// straight to the server (`ghostline.suggestionAccepted`). When a suggestion is shown, partly
// accepted (a word or a line: Ctrl+Right) or typed over is read from the provider's answers
// and the document's edits. No `vscode` import here, so the unit tests run in plain Node.

export const SUGGESTION_EVENT = 'ghostline/suggestionEvent';
export const ACCEPTED_COMMAND = 'ghostline.suggestionAccepted';

export type SuggestionEventKind = 'shown' | 'partial' | 'typedOver';

export interface SuggestionEvent {
  id: string;
  event: SuggestionEventKind;
  acceptedChars?: number;
}

export interface Position {
  line: number;
  character: number;
}

/** One change of a text document, as in VS Code's change event. */
export interface Edit {
  range: { start: Position; end: Position };
  text: string;
}

interface Command {
  command: string;
  arguments?: unknown[];
}

/** The suggestion id the server put in an item's command (`[id, characters]`), if any. */
export function suggestionId(command: Command | undefined): string | undefined {
  const id = command?.command === ACCEPTED_COMMAND ? command.arguments?.[0] : undefined;
  return typeof id === 'string' && id ? id : undefined;
}

/** Characters as the server counts them: code points, not UTF-16 units. */
export function characters(text: string): number {
  return [...text].length;
}

/** Where the cursor is after `text` was inserted at `at`. */
function after(at: Position, text: string): Position {
  const lines = text.split(/\r\n|\r|\n/);
  const last = lines[lines.length - 1];
  return lines.length === 1 ? { line: at.line, character: at.character + last.length }
    : { line: at.line + lines.length - 1, character: last.length };
}

/**
 * What `edit` adds at `at`, when it is an insertion there: VS Code sometimes rewrites the
 * part of a suggestion already typed on the line (the edit then starts before `at` and
 * repeats it). Undefined for any other edit.
 */
function insertedAt(edit: Edit, at: Position): string | undefined {
  const { start, end } = edit.range;
  if (end.line !== at.line || end.character !== at.character || start.line !== at.line) return undefined;
  const rewritten = at.character - start.character;
  return rewritten < edit.text.length ? edit.text.slice(rewritten) : undefined;
}

interface OnScreen {
  id: string;
  uri: string;
  at: Position; // where the rest of the suggestion starts
  rest: string; // what is still shown
}

/**
 * Follows the one suggestion on screen. Typing its next character keeps it (VS Code keeps
 * showing the rest); inserting more than one of its characters at once is a partial accept;
 * inserting all the rest is a whole accept (reported by the item's command, not here); any
 * other edit on its line types over it. Edits elsewhere drop it quietly.
 */
export class SuggestionTracker {
  private current: OnScreen | undefined;
  private readonly reported = new Set<string>(); // ids whose "shown" was sent

  constructor(private readonly send: (event: SuggestionEvent) => void, private readonly maxIds = 256) {}

  /** The provider answered at `at` in `uri` with an item showing `text`. An id seen before is
   * the same suggestion, its rest (the server keeps the id while it is typed through). */
  shown(id: string, uri: string, at: Position, text: string): void {
    this.current = { id, uri, at, rest: text };
    if (this.reported.has(id)) return;
    this.reported.add(id);
    if (this.reported.size > this.maxIds) this.reported.delete(this.reported.values().next().value as string);
    this.send({ id, event: 'shown' });
  }

  /** The document `uri` changed by `edits` (one change event). */
  edited(uri: string, edits: readonly Edit[]): void {
    const shown = this.current;
    if (!shown || shown.uri !== uri || edits.length === 0) return;
    const inserted = edits.length === 1 ? insertedAt(edits[0], shown.at) : undefined;
    if (inserted !== undefined && shown.rest.startsWith(inserted)) {
      if (inserted === shown.rest) {
        this.current = undefined; // all of it: the item's command tells the server
        return;
      }
      if (characters(inserted) > 1) this.send({ id: shown.id, event: 'partial', acceptedChars: characters(inserted) });
      shown.at = after(shown.at, inserted);
      shown.rest = shown.rest.slice(inserted.length);
      return;
    }
    this.current = undefined;
    const line = shown.at.line;
    if (edits.some((e) => e.range.start.line <= line && line <= e.range.end.line)) {
      this.send({ id: shown.id, event: 'typedOver' });
    }
  }

  /** The suggestion being followed, if any (for tests and logs). */
  get following(): Readonly<OnScreen> | undefined {
    return this.current;
  }
}
