/** Where each pane goes for a terminal size: pure arithmetic, read at the root and passed down. */

export const MIN_COLUMNS = 60;
export const MIN_ROWS = 16;
const STATUS_ROWS = 2;
const MAX_COMPOSER_LINES = 5;

export interface Size {
  columns: number;
  rows: number;
}

export interface Geometry {
  columns: number;
  rows: number;
  left: { width: number; contactsRows: number; groupsRows: number };
  right: { width: number; historyRows: number; composerRows: number };
  /** The history pane's message area (inside border, padding and its header line). */
  history: { width: number; height: number };
  /** Width of the composer's text area. */
  composerWidth: number;
  statusRows: number;
}

export function tooSmall(size: Size): boolean {
  return size.columns < MIN_COLUMNS || size.rows < MIN_ROWS;
}

export function composerWidthFor(size: Size): number {
  return size.columns - leftWidth(size.columns) - 4;
}

function leftWidth(columns: number): number {
  return Math.max(18, Math.min(30, Math.floor(columns * 0.24)));
}

/** The layout for a size and a composer of `composerLines` rows of text. */
export function geometry(size: Size, composerLines: number): Geometry {
  const { columns, rows } = size;
  const lw = leftWidth(columns);
  const mainRows = rows - STATUS_ROWS;
  const contactsRows = Math.ceil(mainRows * 0.6);
  const rw = columns - lw;
  const composerRows = Math.max(1, Math.min(MAX_COMPOSER_LINES, composerLines, mainRows - 8)) + 2;
  const historyRows = mainRows - composerRows;
  return {
    columns,
    rows,
    left: { width: lw, contactsRows, groupsRows: mainRows - contactsRows },
    right: { width: rw, historyRows, composerRows },
    history: { width: rw - 4, height: Math.max(1, historyRows - 3) },
    composerWidth: rw - 4,
    statusRows: STATUS_ROWS,
  };
}
