// "ghostline: Find Similar Code": ask the server for code like the selection and list it,
// each with its score, in the References view (or the peek view where that is missing).
import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';
import type { SymbolTree, SymbolTreeInput, SymbolTreeModel } from './references-view';
import { FIND_SIMILAR, SimilarEntry, rankSimilar } from './similar';

const LIMIT = 20;

async function query(client: LanguageClient, location: vscode.Location): Promise<SimilarEntry[]> {
  const c2p = client.code2ProtocolConverter;
  const result = await client.sendRequest(FIND_SIMILAR, {
    textDocument: { uri: c2p.asUri(location.uri) },
    range: c2p.asRange(location.range),
    limit: LIMIT,
  });
  return rankSimilar(result, (uri) => vscode.workspace.asRelativePath(vscode.Uri.parse(uri)));
}

function toLocation(client: LanguageClient, entry: SimilarEntry): vscode.Location {
  const p2c = client.protocol2CodeConverter;
  return new vscode.Location(p2c.asUri(entry.uri), p2c.asRange(entry.range));
}

class SimilarInput implements SymbolTreeInput<SimilarEntry> {
  readonly contextValue = 'ghostline.similar';
  readonly title = 'Similar Code';

  constructor(readonly location: vscode.Location, private readonly client: LanguageClient) {}

  async resolve(): Promise<SymbolTreeModel<SimilarEntry>> {
    let entries: SimilarEntry[];
    try {
      entries = await query(this.client, this.location);
    } catch (error) {
      const message = `Find Similar Code failed: ${error instanceof Error ? error.message : error}`;
      return { message, provider: { getChildren: () => [], getTreeItem: (e) => new vscode.TreeItem(e.label) } };
    }
    const provider: vscode.TreeDataProvider<SimilarEntry> = {
      getChildren: (parent) => (parent ? [] : entries),
      getTreeItem: (entry) => {
        const item = new vscode.TreeItem(entry.label, vscode.TreeItemCollapsibleState.None);
        const location = toLocation(this.client, entry);
        item.description = entry.description;
        item.tooltip = new vscode.MarkdownString().appendCodeblock(entry.preview);
        item.iconPath = new vscode.ThemeIcon('symbol-function');
        item.command = { command: 'vscode.open', title: 'Open', arguments: [location.uri, { selection: location.range }] };
        return item;
      },
    };
    const count = entries.length;
    return {
      message: count ? `${count} similar ${count === 1 ? 'snippet' : 'snippets'}, by score` : 'No similar code found',
      provider,
      navigation: {
        nearest: () => entries[0],
        next: (from) => entries[(entries.indexOf(from) + 1) % count] ?? from,
        previous: (from) => entries[(entries.indexOf(from) - 1 + count) % count] ?? from,
        location: (entry) => toLocation(this.client, entry),
      },
    };
  }

  with(location: vscode.Location): SimilarInput {
    return new SimilarInput(location, this.client);
  }
}

export async function findSimilar(client: LanguageClient | undefined): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) return;
  if (!client?.isRunning()) {
    void vscode.window.showWarningMessage('ghostline: the server is not running; see "ghostline: Show Server Log".');
    return;
  }
  const input = new SimilarInput(new vscode.Location(editor.document.uri, editor.selection), client);
  const references = vscode.extensions.getExtension<SymbolTree>('vscode.references-view');
  if (references) {
    (await references.activate()).setInput(input);
    return;
  }
  const entries = await query(client, input.location);
  await vscode.commands.executeCommand('editor.action.peekLocations', editor.document.uri,
    editor.selection.start, entries.map((e) => toLocation(client, e)), 'peek');
}
