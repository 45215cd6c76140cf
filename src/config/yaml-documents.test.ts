import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../lib/errors.js';
import { MAX_CONFIG_FILE_BYTES, MAX_NESTING_DEPTH, parseYamlDocuments, readYamlSources } from './yaml-documents.js';

describe('parseYamlDocuments', () => {
  it('splits a stream, skips empty documents and keeps their place in the numbering', () => {
    const text = '# leading comment\na: 1\n---\n# only a comment\n---\n---\nb: [x, y]\n';
    const parsed = parseYamlDocuments(text, 'f.yaml');
    expect(parsed.issues).toEqual([]);
    expect(parsed.documents.map((doc) => [doc.file, doc.index, doc.value])).toEqual([
      ['f.yaml', 0, { a: 1 }],
      ['f.yaml', 3, { b: ['x', 'y'] }],
    ]);
  });

  it('locates keys and values by path, and the nearest node for paths that do not exist', () => {
    const text = 'spec:\n  ports:\n    - { name: http, port: abc }\n  vips:\n';
    const [doc] = parseYamlDocuments(text, 'f.yaml').documents;
    expect(doc).toBeDefined();
    const positions = doc!.positions;
    expect(positions.locate(['spec', 'ports', 0, 'port'], 'value')).toEqual({ line: 3, column: 27 });
    expect(positions.locate(['spec', 'ports', 0, 'port'], 'key')).toEqual({ line: 3, column: 21 });
    // Missing field: the mapping that should hold it.
    expect(positions.locate(['spec', 'ports', 0, 'protocol'], 'value')).toEqual({ line: 3, column: 7 });
    // `vips:` without a value: the key.
    expect(positions.locate(['spec', 'vips'], 'value')).toEqual({ line: 4, column: 3 });
    expect(positions.locate([], 'value')).toEqual({ line: 1, column: 1 });
  });

  it('turns a syntax error into an issue with line and column, and does not validate that document', () => {
    const text = 'a: 1\n---\nkey: [unclosed\nnext: 2\n---\nc: 3\n';
    const parsed = parseYamlDocuments(text, 'broken.yaml');
    expect(parsed.documents.map((doc) => doc.value)).toEqual([{ a: 1 }, { c: 3 }]);
    expect(parsed.issues.length).toBeGreaterThan(0);
    const [first] = parsed.issues;
    expect(first).toMatchObject({ file: 'broken.yaml', document: 1, path: '' });
    expect(first!.message).toMatch(/^YAML syntax error: /);
    expect(first!.line).toBeGreaterThanOrEqual(3);
    expect(first!.column).toBeGreaterThanOrEqual(1);
  });

  it('reports a duplicate key where it is', () => {
    const parsed = parseYamlDocuments('a: 1\nb: 2\na: 3\n', 'dup.yaml');
    expect(parsed.documents).toEqual([]);
    expect(parsed.issues).toEqual([
      { file: 'dup.yaml', document: 0, kind: '', name: '', path: '', message: 'YAML syntax error: Map keys must be unique', line: 3, column: 1 },
    ]);
  });

  it('refuses an unknown tag rather than guessing what it means', () => {
    const parsed = parseYamlDocuments('a: !weird 1\n', 'tag.yaml');
    expect(parsed.documents).toEqual([]);
    expect(parsed.issues[0]).toMatchObject({ document: 0, line: 1, column: 4 });
    expect(parsed.issues[0]!.message).toContain('!weird');
  });

  it('refuses an alias expansion bomb instead of expanding it', () => {
    const text = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    const parsed = parseYamlDocuments(text, 'bomb.yaml');
    expect(parsed.documents).toEqual([]);
    expect(parsed.issues[0]).toMatchObject({ file: 'bomb.yaml', document: 0, line: 1, column: 1 });
    expect(parsed.issues[0]!.message).toMatch(/^YAML error: .*alias/i);
  });

  it('refuses a __proto__ key, which would otherwise vanish or set a prototype', () => {
    const parsed = parseYamlDocuments('a: 1\nlabels: { __proto__: { polluted: yes } }\n', 'proto.yaml');
    expect(parsed.documents).toEqual([]);
    expect(parsed.issues).toEqual([
      { file: 'proto.yaml', document: 0, kind: '', name: '', path: '', message: 'a field may not be named __proto__', line: 2, column: 11 },
    ]);
  });

  it('refuses nesting past the limit before building the document, flow or block', () => {
    const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    expect(parseYamlDocuments(`a: 1\n---\n${nested(MAX_NESTING_DEPTH)}\n`, 'ok.yaml').issues).toEqual([]);
    for (const text of [`a: 1\n---\n${nested(MAX_NESTING_DEPTH + 1)}\n`, `a: 1\n---\n${nested(100_000)}\n`]) {
      const parsed = parseYamlDocuments(text, 'deep.yaml');
      expect(parsed.documents).toEqual([]);
      expect(parsed.issues).toEqual([
        {
          file: 'deep.yaml',
          document: 1,
          kind: '',
          name: '',
          path: '',
          message: `nests collections more than ${MAX_NESTING_DEPTH} levels deep`,
          line: 3,
          column: MAX_NESTING_DEPTH + 1,
        },
      ]);
    }
    const block = Array.from({ length: MAX_NESTING_DEPTH + 1 }, (_, level) => `${' '.repeat(level)}k${level}:`).join('\n') + ' x\n';
    expect(parseYamlDocuments(block, 'block.yaml').issues.map((issue) => issue.message)).toEqual([
      `nests collections more than ${MAX_NESTING_DEPTH} levels deep`,
    ]);
  });

  it('accepts merge keys, as Kubernetes users write them', () => {
    const parsed = parseYamlDocuments('base: &b { x: 1 }\nobj:\n  <<: *b\n  y: 2\n', 'merge.yaml');
    expect(parsed.issues).toEqual([]);
    expect(parsed.documents[0]!.value).toEqual({ base: { x: 1 }, obj: { x: 1, y: 2 } });
  });

  it.each([
    ['an empty text', ''],
    ['only whitespace and comments', '  \n# nothing here\n'],
    ['only separators', '---\n---\n'],
  ])('reports %s as a file with no documents', (_what, text) => {
    expect(parseYamlDocuments(text, 'empty.yaml')).toEqual({
      documents: [],
      issues: [
        {
          file: 'empty.yaml',
          document: null,
          kind: '',
          name: '',
          path: '',
          message: 'contains no YAML documents (expected at least one with apiVersion, kind, metadata and spec)',
        },
      ],
    });
  });

  it('refuses a text over the size limit without parsing it', () => {
    const parsed = parseYamlDocuments('#'.repeat(MAX_CONFIG_FILE_BYTES + 1), 'huge.yaml');
    expect(parsed.documents).toEqual([]);
    expect(parsed.issues[0]).toMatchObject({ file: 'huge.yaml', document: null });
    expect(parsed.issues[0]!.message).toContain(`at most ${MAX_CONFIG_FILE_BYTES}`);
  });
});

describe('readYamlSources', () => {
  let dir = '';

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tm-config-read-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a directory: *.yaml and *.yml in name order, not other files, dot files or subdirectories', async () => {
    await writeFile(join(dir, 'b.yml'), 'n: b\n');
    await writeFile(join(dir, 'a.yaml'), 'n: a\n---\nn: a2\n');
    await writeFile(join(dir, 'c.YAML'), 'n: c\n');
    await writeFile(join(dir, 'notes.txt'), 'n: txt\n');
    await writeFile(join(dir, '.hidden.yaml'), 'n: hidden\n');
    await mkdir(join(dir, 'sub.yaml'));
    await writeFile(join(dir, 'sub.yaml', 'inner.yaml'), 'n: inner\n');
    await symlink(join(dir, 'b.yml'), join(dir, 'd-link.yaml'));
    const sources = await readYamlSources([dir]);
    expect(sources.issues).toEqual([]);
    expect(sources.documents.map((doc) => [doc.file, doc.index, doc.value])).toEqual([
      [join(dir, 'a.yaml'), 0, { n: 'a' }],
      [join(dir, 'a.yaml'), 1, { n: 'a2' }],
      [join(dir, 'b.yml'), 0, { n: 'b' }],
      [join(dir, 'c.YAML'), 0, { n: 'c' }],
      [join(dir, 'd-link.yaml'), 0, { n: 'b' }],
    ]);
  });

  it('reads files and directories in the order given; a named file is read whatever its extension', async () => {
    await writeFile(join(dir, 'z.conf'), 'n: z\n');
    await mkdir(join(dir, 'd'));
    await writeFile(join(dir, 'd', 'a.yaml'), 'n: a\n');
    const sources = await readYamlSources([join(dir, 'z.conf'), join(dir, 'd')]);
    expect(sources.documents.map((doc) => doc.value)).toEqual([{ n: 'z' }, { n: 'a' }]);
  });

  it('reports a directory without YAML files and an empty file as issues', async () => {
    await mkdir(join(dir, 'none'));
    await writeFile(join(dir, 'none', 'readme.md'), '# no yaml\n');
    await writeFile(join(dir, 'empty.yaml'), '');
    const sources = await readYamlSources([join(dir, 'none'), join(dir, 'empty.yaml')]);
    expect(sources.issues.map((issue) => [issue.file, issue.document, issue.message])).toEqual([
      [join(dir, 'none'), null, 'is a directory with no *.yaml or *.yml files'],
      [join(dir, 'empty.yaml'), null, 'contains no YAML documents (expected at least one with apiVersion, kind, metadata and spec)'],
    ]);
  });

  it('refuses a file over the size limit without reading it', async () => {
    const big = join(dir, 'big.yaml');
    await writeFile(big, '');
    await truncate(big, MAX_CONFIG_FILE_BYTES + 1); // sparse: the bytes are never written
    const sources = await readYamlSources([big]);
    expect(sources.issues).toEqual([
      {
        file: big,
        document: null,
        kind: '',
        name: '',
        path: '',
        message: `is ${MAX_CONFIG_FILE_BYTES + 1} bytes; a config file may be at most ${MAX_CONFIG_FILE_BYTES} bytes`,
      },
    ]);
  });

  it('throws TM_ERR_CONFIG_READ naming every unreadable path and the OS reason', async () => {
    const missing = join(dir, 'missing.yaml');
    const alsoMissing = join(dir, 'gone');
    await writeFile(join(dir, 'fine.yaml'), 'a: 1\n');
    let caught: unknown;
    try {
      await readYamlSources([missing, join(dir, 'fine.yaml'), alsoMissing]);
    } catch (err) {
      caught = err;
    }
    expect(isTracemeshError(caught, 'TM_ERR_CONFIG_READ')).toBe(true);
    expect((caught as Error).message).toBe(
      `cannot read config ${missing}: no such file or directory (ENOENT)\ncannot read config ${alsoMissing}: no such file or directory (ENOENT)`,
    );
  });

  it('reads nothing from no paths', async () => {
    expect(await readYamlSources([])).toEqual({ documents: [], issues: [] });
  });
});
