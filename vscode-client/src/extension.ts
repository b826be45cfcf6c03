// ghostline for VS Code: a thin client. The server owns completions, prompts, models and
// similarity; this file wires commands, settings and the status bar to it.
import * as vscode from 'vscode';
import { SECTION } from './config';
import { findSimilar } from './findSimilar';
import { Server } from './server';
import { StatusBar } from './statusBar';

let server: Server | undefined;

/** Flip `ghostline.enabled` where it is set (workspace or user); the server follows. */
async function toggleCompletions(): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const inspected = config.inspect<boolean>('enabled');
  const target = inspected?.workspaceFolderValue !== undefined ? vscode.ConfigurationTarget.WorkspaceFolder
    : inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace
      : vscode.ConfigurationTarget.Global;
  await config.update('enabled', !config.get<boolean>('enabled', true), target);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('ghostline', { log: true });
  const status = new StatusBar();
  const running = new Server(context, output, status);
  server = running;
  context.subscriptions.push(
    output,
    status,
    running,
    vscode.commands.registerCommand('ghostline.findSimilar', () => findSimilar(running.client)),
    vscode.commands.registerCommand('ghostline.toggle', toggleCompletions),
    vscode.commands.registerCommand('ghostline.showLog', () => output.show(true)),
    vscode.commands.registerCommand('ghostline.restart', () => running.restart()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.pythonPath`)) void running.restart();
      else if (event.affectsConfiguration(SECTION)) void running.pushSettings();
    }),
  );
  await running.start();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
