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

const COLUMN_AREA = 160;

/** Vertical bars over time (one per hour), with the hour under every fourth bar. */
export function timeColumns(kind: string, title: string, points: readonly { hour: string; count: number }[]): string {
  const max = Math.max(...points.map((p) => p.count), 1);
  const step = Math.floor((CHART_WIDTH - 40) / Math.max(points.length, 1));
  const cols = points
    .map((p, n) => {
      const h = p.count === 0 ? 0 : Math.max(2, Math.round((p.count / max) * COLUMN_AREA));
      const x = 30 + n * step;
      const label = n % 4 === 0 ? `<text class="axis" x="${x + step / 2}" y="${COLUMN_AREA + 16}" text-anchor="middle">${esc(p.hour.slice(11, 16))}</text>` : '';
      return (
        `<g class="col" data-hour="${esc(p.hour)}" data-count="${p.count}"><title>${esc(p.hour.slice(0, 16).replace('T', ' '))} UTC: ${p.count}</title>` +
        `<rect class="bar" x="${x + 2}" y="${COLUMN_AREA - h}" width="${step - 4}" height="${h}"></rect>${label}</g>`
      );
    })
    .join('');
  return (
    `<svg class="chart" data-chart="${esc(kind)}" role="img" aria-label="${esc(title)}" viewBox="0 0 ${CHART_WIDTH} ${COLUMN_AREA + 24}" width="${CHART_WIDTH}" height="${COLUMN_AREA + 24}" xmlns="http://www.w3.org/2000/svg">` +
    `<text class="axis" x="0" y="12">${max}</text><line class="base" x1="28" y1="${COLUMN_AREA}" x2="${CHART_WIDTH}" y2="${COLUMN_AREA}"></line>${cols}</svg>`
  );
}
