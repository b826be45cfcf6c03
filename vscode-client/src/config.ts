// Settings: which VS Code settings go to the server, and which Python runs it.
// No `vscode` import here, so the unit tests run in plain Node.
import * as path from 'node:path';

export const SECTION = 'ghostline';

// Settings the client consumes itself; everything else under `ghostline.` is the
// server's, with the same camelCase name (ghostline.maxTokens <-> maxTokens).
export const CLIENT_ONLY: ReadonlySet<string> = new Set(['pythonPath', 'trace.server']);

/** Server setting names from package.json `contributes.configuration.properties`. */
export function serverSettingNames(properties: Record<string, unknown>): string[] {
  return Object.keys(properties)
    .filter((key) => key.startsWith(`${SECTION}.`))
    .map((key) => key.slice(SECTION.length + 1))
    .filter((name) => !CLIENT_ONLY.has(name));
}

/** The object sent as initializationOptions and as `{ghostline: ...}` on change. */
export function serverSettings(names: readonly string[], get: (name: string) => unknown): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const name of names) {
    const value = get(name);
    if (value !== undefined) settings[name] = value;
  }
  return settings;
}

function venvPython(root: string, platform: NodeJS.Platform): string {
  return platform === 'win32'
    ? path.join(root, '.venv', 'Scripts', 'python.exe')
    : path.join(root, '.venv', 'bin', 'python');
}

/**
 * Where the repository's `.venv` may be: beside the extension's folder (running from a
 * checkout, `vscode-client/..`), then at the root of each workspace folder.
 */
export function pythonCandidates(extensionPath: string, folders: readonly string[],
                                 platform: NodeJS.Platform = process.platform): string[] {
  return [path.dirname(extensionPath), ...folders].map((root) => venvPython(root, platform));
}

/** `ghostline.pythonPath` when set, else the first `.venv` that exists, else python3. */
export function resolvePython(configured: string | undefined, candidates: readonly string[],
                              exists: (file: string) => boolean,
                              platform: NodeJS.Platform = process.platform): string {
  const explicit = configured?.trim();
  if (explicit) return explicit;
  return candidates.find(exists) ?? (platform === 'win32' ? 'python' : 'python3');
}
