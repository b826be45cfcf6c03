// The part of the built-in References view's API (extension `vscode.references-view`)
// that ghostline uses: an input anchored at a location that resolves to a tree.
import type * as vscode from 'vscode';

export interface SymbolTree {
  setInput(input: SymbolTreeInput<unknown>): void;
}

export interface SymbolTreeInput<T> {
  readonly contextValue: string;
  readonly title: string;
  readonly location: vscode.Location;
  resolve(): vscode.ProviderResult<SymbolTreeModel<T>>;
  with(location: vscode.Location): SymbolTreeInput<T>;
}

export interface SymbolTreeModel<T> {
  provider: vscode.TreeDataProvider<T>;
  message: string | undefined;
  navigation?: {
    nearest(uri: vscode.Uri, position: vscode.Position): T | undefined;
    next(from: T): T;
    previous(from: T): T;
    location(item: T): vscode.Location | undefined;
  };
}
