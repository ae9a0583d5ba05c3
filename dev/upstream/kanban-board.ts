import { DurableObject } from 'cloudflare:workers';

/**
 * The demo's data: boards, cards and comments in one SQLite-backed Durable Object. One object
 * serializes every change, and `wrangler dev --persist-to` keeps it on disk across restarts.
 */

export interface Board {
  id: string;
  name: string;
  columns: string[];
  /** Open cards per column. */
  openCards: Record<string, number>;
}

export interface Card {
  id: number;
  board: string;
  title: string;
  description: string;
  column: string;
  closed: boolean;
  createdAt: string;
}

export interface Comment {
  text: string;
  createdAt: string;
}

/** A refusal the person can act on (unknown board, card or column): shown to the MCP client. */
export class KanbanError extends Error {
  override readonly name = 'KanbanError';
}

type CardRow = { id: number; board: string; title: string; description: string; col: string; closed: number; created_at: string };

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS boards (id TEXT PRIMARY KEY, name TEXT NOT NULL, columns TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT, board TEXT NOT NULL REFERENCES boards(id), title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', col TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, card INTEGER NOT NULL REFERENCES cards(id), text TEXT NOT NULL, created_at TEXT NOT NULL);
`;

const SEED_BOARDS = [
  { id: 'roadmap', name: 'Product roadmap', columns: ['todo', 'doing', 'done'] },
  { id: 'support', name: 'Support queue', columns: ['new', 'investigating', 'resolved'] },
];
const SEED_CARDS = [
  { board: 'roadmap', title: 'Connect claude.ai through the gateway', column: 'doing' },
  { board: 'roadmap', title: 'Write the deployment guide', column: 'todo' },
  { board: 'support', title: 'Customer cannot see the connector', column: 'new' },
];

export class KanbanBoard extends DurableObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    ctx.blockConcurrencyWhile(async () => this.#migrate());
  }

  listBoards(): Board[] {
    const boards = this.#sql<{ id: string; name: string; columns: string }>('SELECT id, name, columns FROM boards ORDER BY id');
    return boards.map((b) => {
      const columns = JSON.parse(b.columns) as string[];
      const openCards = Object.fromEntries(columns.map((c) => [c, 0]));
      for (const row of this.#sql<{ col: string; n: number }>('SELECT col, COUNT(*) AS n FROM cards WHERE board = ? AND closed = 0 GROUP BY col', b.id)) {
        openCards[row.col] = row.n;
      }
      return { id: b.id, name: b.name, columns, openCards };
    });
  }

  listCards(board: string, options: { column?: string; includeClosed?: boolean } = {}): Card[] {
    const columns = this.#columns(board);
    if (options.column !== undefined && !columns.includes(options.column)) throw this.#unknownColumn(board, columns, options.column);
    return this.#sql<CardRow>('SELECT * FROM cards WHERE board = ? ORDER BY id', board)
      .filter((row) => (options.includeClosed || row.closed === 0) && (options.column === undefined || row.col === options.column))
      .map(toCard);
  }

  getCard(id: number): Card & { comments: Comment[] } {
    const card = this.#card(id);
    const comments = this.#sql<{ text: string; created_at: string }>('SELECT text, created_at FROM comments WHERE card = ? ORDER BY id', id);
    return { ...card, comments: comments.map((c) => ({ text: c.text, createdAt: c.created_at })) };
  }

  createCard(board: string, title: string, description = '', column?: string): Card {
    const columns = this.#columns(board);
    const col = column ?? columns[0] ?? 'todo';
    if (!columns.includes(col)) throw this.#unknownColumn(board, columns, col);
    const [row] = this.#sql<CardRow>(
      'INSERT INTO cards (board, title, description, col, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *',
      board,
      title,
      description,
      col,
      new Date().toISOString(),
    );
    return toCard(row as CardRow);
  }

  moveCard(id: number, column: string): Card {
    const card = this.#card(id);
    const columns = this.#columns(card.board);
    if (!columns.includes(column)) throw this.#unknownColumn(card.board, columns, column);
    this.#sql('UPDATE cards SET col = ? WHERE id = ?', column, id);
    return { ...card, column };
  }

  commentOnCard(id: number, text: string): Card & { comments: Comment[] } {
    this.#card(id);
    this.#sql('INSERT INTO comments (card, text, created_at) VALUES (?, ?, ?)', id, text, new Date().toISOString());
    return this.getCard(id);
  }

  closeCard(id: number): Card {
    const card = this.#card(id);
    this.#sql('UPDATE cards SET closed = 1 WHERE id = ?', id);
    return { ...card, closed: true };
  }

  #migrate(): void {
    this.ctx.storage.sql.exec(SCHEMA);
    const [count] = this.#sql<{ n: number }>('SELECT COUNT(*) AS n FROM boards');
    if (count?.n) return;
    for (const b of SEED_BOARDS) this.#sql('INSERT INTO boards (id, name, columns) VALUES (?, ?, ?)', b.id, b.name, JSON.stringify(b.columns));
    for (const c of SEED_CARDS) this.createCard(c.board, c.title, '', c.column);
  }

  #sql<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): T[] {
    return this.ctx.storage.sql.exec<T>(query, ...bindings).toArray();
  }

  #columns(board: string): string[] {
    const [row] = this.#sql<{ columns: string }>('SELECT columns FROM boards WHERE id = ?', board);
    if (!row) {
      const ids = this.#sql<{ id: string }>('SELECT id FROM boards ORDER BY id').map((b) => b.id);
      throw new KanbanError(`no board "${board}"; boards: ${ids.join(', ')}`);
    }
    return JSON.parse(row.columns) as string[];
  }

  #card(id: number): Card {
    const [row] = this.#sql<CardRow>('SELECT * FROM cards WHERE id = ?', id);
    if (!row) throw new KanbanError(`no card #${id}`);
    return toCard(row);
  }

  #unknownColumn(board: string, columns: string[], column: string): KanbanError {
    return new KanbanError(`board "${board}" has no column "${column}"; columns: ${columns.join(', ')}`);
  }
}

function toCard(row: CardRow): Card {
  return { id: row.id, board: row.board, title: row.title, description: row.description, column: row.col, closed: row.closed === 1, createdAt: row.created_at };
}
