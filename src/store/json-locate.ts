/**
 * Positions inside JSON text, for error messages only. `JSON.parse` is fast but Node 20's messages do not always
 * carry a position, and never the position of the n-th array element; this small scanner runs only once a file
 * has already failed validation, so its speed does not matter.
 */

export interface LineColumn {
  /** 1-based line. */
  line: number;
  /** 1-based column, in UTF-16 code units. */
  column: number;
}

export function lineColumn(text: string, offset: number): LineColumn {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

class ScanError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

interface ScanResult {
  /** First syntax error, if any. */
  error?: { offset: number; message: string };
  /** Start offsets of the elements of the document array (top level, or under `collection`). */
  elements: number[];
}

/** Scans JSON text: the first syntax error and the offsets of the document array's elements. */
export function scanJson(text: string, collection?: string): ScanResult {
  const s = new Scanner(text, collection);
  try {
    s.ws();
    s.value(0, collection === undefined);
    s.ws();
    if (s.pos < text.length) throw new ScanError(s.pos, 'unexpected content after the JSON value');
  } catch (err) {
    // A stack overflow on absurdly deep nesting still gets a position, just a rougher one.
    if (err instanceof RangeError)
      return { error: { offset: s.pos, message: 'nested too deeply' }, elements: s.elements };
    if (!(err instanceof ScanError)) throw err;
    return { error: { offset: err.offset, message: err.message }, elements: s.elements };
  }
  return { elements: s.elements };
}

class Scanner {
  pos = 0;
  elements: number[] = [];

  constructor(
    private readonly text: string,
    private readonly collection: string | undefined,
  ) {}

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.pos++;
      else break;
    }
  }

  value(depth: number, target: boolean): void {
    const c = this.text[this.pos];
    if (c === undefined) throw new ScanError(this.pos, 'unexpected end of JSON input');
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth, target);
    if (c === '"') return void this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const lit of ['true', 'false', 'null']) {
      if (this.text.startsWith(lit, this.pos)) {
        this.pos += lit.length;
        return;
      }
    }
    throw new ScanError(this.pos, `unexpected character ${JSON.stringify(c)}`);
  }

  private object(depth: number): void {
    this.pos++;
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') throw new ScanError(this.pos, 'expected a property name in double quotes');
      const key = this.string();
      this.ws();
      if (this.text[this.pos] !== ':') throw new ScanError(this.pos, "expected ':' after a property name");
      this.pos++;
      this.ws();
      const target = depth === 0 && this.collection !== undefined && key === this.collection;
      // JSON.parse keeps the last of duplicated keys, so the last occurrence is the one that counts.
      if (target) this.elements = [];
      this.value(depth + 1, target);
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return;
      }
      throw new ScanError(
        this.pos,
        c === undefined ? 'unexpected end of JSON input' : "expected ',' or '}' after a property value",
      );
    }
  }

  private array(depth: number, target: boolean): void {
    this.pos++;
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (target) this.elements.push(this.pos);
      this.value(depth + 1, false);
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return;
      }
      throw new ScanError(
        this.pos,
        c === undefined ? 'unexpected end of JSON input' : "expected ',' or ']' after an array element",
      );
    }
  }

  private string(): string {
    const t = this.text;
    const start = ++this.pos;
    for (;;) {
      const c = t.charCodeAt(this.pos);
      if (Number.isNaN(c)) throw new ScanError(this.pos, 'unterminated string');
      if (c === 34) break;
      if (c < 0x20) throw new ScanError(this.pos, 'control character in a string (escape it)');
      if (c === 92) {
        const e = t[this.pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(this.pos + 2, this.pos + 6)))
            throw new ScanError(this.pos, 'bad \\u escape');
          this.pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) throw new ScanError(this.pos, 'bad escape in a string');
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
    const raw = t.slice(start, this.pos);
    this.pos++;
    return raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
  }

  private number(): void {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (!m || m[0] === '-' || m[0].length === 0) throw new ScanError(this.pos, 'bad number');
    this.pos += m[0].length;
  }
}
