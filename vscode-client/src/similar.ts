// The `ghostline/findSimilar` result, checked and ranked for display.
// No `vscode` import here, so the unit tests run in plain Node.

export const FIND_SIMILAR = 'ghostline/findSimilar';

export interface LspRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

export interface SimilarItem {
  uri: string;
  range: LspRange;
  score: number;
  preview: string;
}

export interface SimilarEntry extends SimilarItem {
  label: string;
  description: string;
}

function isRange(value: unknown): value is LspRange {
  const r = value as LspRange | undefined;
  return typeof r?.start?.line === 'number' && typeof r?.end?.line === 'number';
}

/** The first non-blank line of a snippet, shortened for one row of a tree. */
export function previewLine(preview: string, width = 80): string {
  const line = preview.split('\n').find((l) => l.trim()) ?? '';
  const text = line.trim();
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/** Items with a score, best first; `relative` turns a URI into what the user reads. */
export function rankSimilar(result: unknown, relative: (uri: string) => string): SimilarEntry[] {
  const items = (result as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) return [];
  return items
    .filter((i): i is SimilarItem => typeof i?.uri === 'string' && isRange(i?.range) && typeof i?.score === 'number')
    .sort((a, b) => b.score - a.score)
    .map((item) => ({
      ...item,
      preview: typeof item.preview === 'string' ? item.preview : '',
      label: `${item.score.toFixed(2)}  ${previewLine(typeof item.preview === 'string' ? item.preview : '')}`,
      description: `${relative(item.uri)}:${item.range.start.line + 1}`,
    }));
}
