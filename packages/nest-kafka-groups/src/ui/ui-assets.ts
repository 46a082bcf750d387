import { readFileSync } from 'node:fs';

/** The page's files ship beside dist/ and src/ in the package's assets/ui folder (the same depth from both). */
const ASSETS = new URL('../../assets/ui/', import.meta.url);

const cache = new Map<string, string>();

/** One of the page's files, read once. */
export function uiAsset(name: 'index.html' | 'app.js' | 'app.css'): string {
  let text = cache.get(name);
  if (text === undefined) cache.set(name, (text = readFileSync(new URL(name, ASSETS), 'utf8')));
  return text;
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** The page, its links rooted at `path` (where it is served), showing one group or all. */
export function uiPage(path: string, group: string | undefined): string {
  const values: Record<string, string> = {
    base: path,
    group: group ?? '',
    title: group === undefined ? 'Kafka consumer groups' : `Kafka group ${group}`,
  };
  return uiAsset('index.html').replace(/\{\{(base|group|title)\}\}/g, (_, name: string) =>
    escapeHtml(values[name]),
  );
}
