/**
 * Charts as inline SVG, drawn on the server: the page needs no script, no external asset, and
 * its CSP can forbid both. Every value placed in markup goes through `esc`.
 */

export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const BAR_HEIGHT = 22;
const BAR_GAP = 6;
const LABEL_WIDTH = 190;
const CHART_WIDTH = 640;

/** Horizontal bars, one per item, longest first; `kind` names the data for tests and styling. */
export function horizontalBars(kind: string, title: string, items: readonly { label: string; count: number }[], empty: string): string {
  if (items.length === 0) return `<p class="empty" data-chart="${esc(kind)}">${esc(empty)}</p>`;
  const max = Math.max(...items.map((i) => i.count), 1);
  const barSpace = CHART_WIDTH - LABEL_WIDTH - 60;
  const height = items.length * (BAR_HEIGHT + BAR_GAP);
  const rows = items
    .map((item, n) => {
      const y = n * (BAR_HEIGHT + BAR_GAP);
      const w = Math.max(2, Math.round((item.count / max) * barSpace));
      return (
        `<g class="row" data-label="${esc(item.label)}" data-count="${item.count}">` +
        `<title>${esc(item.label)}: ${item.count}</title>` +
        `<text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT * 0.7}" text-anchor="end">${esc(item.label)}</text>` +
        `<rect class="bar" x="${LABEL_WIDTH}" y="${y}" width="${w}" height="${BAR_HEIGHT}"></rect>` +
        `<text x="${LABEL_WIDTH + w + 6}" y="${y + BAR_HEIGHT * 0.7}">${item.count}</text></g>`
      );
    })
    .join('');
  return `<svg class="chart" data-chart="${esc(kind)}" role="img" aria-label="${esc(title)}" viewBox="0 0 ${CHART_WIDTH} ${height}" width="${CHART_WIDTH}" height="${height}" xmlns="http://www.w3.org/2000/svg">${rows}</svg>`;
}

/** One bucket of a column chart: its start (ISO), its label and tooltip, and its stacked parts. */
export interface Column {
  readonly start: string;
  readonly label: string;
  readonly tip: string;
  readonly parts: readonly number[];
}

/**
 * Columns over time, each a stack of parts (e.g. forwarded and denied), bottom first; the
 * part classes colour them. A label under every `labelEvery`-th column.
 */
export function stackedColumns(kind: string, title: string, columns: readonly Column[], opts: { classes: readonly string[]; height?: number; labelEvery?: number }): string {
  const area = opts.height ?? 140;
  const labelled = opts.labelEvery !== undefined && opts.labelEvery > 0;
  const bottom = area + (labelled ? 18 : 2);
  const max = Math.max(...columns.map((c) => c.parts.reduce((a, b) => a + b, 0)), 1);
  const step = Math.floor((CHART_WIDTH - 40) / Math.max(columns.length, 1));
  const cols = columns
    .map((c, n) => {
      const x = 34 + n * step;
      let y = area;
      const rects = c.parts
        .map((v, k) => {
          if (v <= 0) return '';
          const h = Math.max(1, Math.round((v / max) * area));
          y -= h;
          return `<rect class="${esc(opts.classes[k] ?? 'bar')}" x="${x + 1}" y="${y}" width="${Math.max(1, step - 2)}" height="${h}"></rect>`;
        })
        .join('');
      const label = labelled && n % (opts.labelEvery as number) === 0 ? `<text class="axis" x="${x}" y="${area + 14}">${esc(c.label)}</text>` : '';
      return `<g class="col" data-start="${esc(c.start)}" data-values="${c.parts.join(',')}"><title>${esc(c.tip)}</title>${rects}${label}</g>`;
    })
    .join('');
  return (
    `<svg class="chart" data-chart="${esc(kind)}" role="img" aria-label="${esc(title)}" viewBox="0 0 ${CHART_WIDTH} ${bottom}" width="${CHART_WIDTH}" height="${bottom}" xmlns="http://www.w3.org/2000/svg">` +
    `<text class="axis" x="0" y="11">${max}</text><line class="base" x1="32" y1="${area}" x2="${CHART_WIDTH}" y2="${area}"></line>${cols}</svg>`
  );
}
