// Feeds the suggestion tracker (telemetry.ts) from VS Code: the inline completions the
// server's provider returns, and the edits of the documents. Sends nothing while
// `ghostline.telemetry` is off (the server then gives items no id either).
import * as vscode from 'vscode';
import type { Middleware } from 'vscode-languageclient/node';
import { SECTION } from './config';
import { SuggestionEvent, SuggestionTracker, suggestionId } from './telemetry';

export class AcceptanceTelemetry implements vscode.Disposable {
  private readonly tracker: SuggestionTracker;
  private readonly listener: vscode.Disposable;

  constructor(send: (event: SuggestionEvent) => void) {
    this.tracker = new SuggestionTracker((event) => {
      if (enabled()) send(event);
    });
    this.listener = vscode.workspace.onDidChangeTextDocument((event) => {
      if (event.contentChanges.length) this.tracker.edited(event.document.uri.toString(), event.contentChanges);
    });
  }

  /** The language client's middleware: the item VS Code is about to show is "shown" when it
   * answers the document as it still is, in the active editor. */
  readonly middleware: Middleware = {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      const version = document.version;
      const result = await next(document, position, context, token);
      const item = (Array.isArray(result) ? result : result?.items)?.[0];
      const id = suggestionId(item?.command);
      if (id && item && typeof item.insertText === 'string' && enabled() && !token.isCancellationRequested
          && document.version === version && vscode.window.activeTextEditor?.document === document) {
        this.tracker.shown(id, document.uri.toString(), item.range?.start ?? position, item.insertText);
      }
      return result;
    },
  };

  dispose(): void {
    this.listener.dispose();
  }
}

function enabled(): boolean {
  return vscode.workspace.getConfiguration(SECTION).get<boolean>('telemetry', true);
}
