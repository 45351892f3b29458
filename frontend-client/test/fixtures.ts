// The wire-format fixtures of ../tests/fixtures/protocol (their README says what each holds),
// loaded at build time by Vite, so a new fixture file is picked up without a list to update.
/// <reference types="vite/client" />

export interface FixtureFile {
  /** Path below tests/fixtures/protocol, e.g. `frame-state.json` or `invalid/document.json`. */
  name: string;
  description: string;
  frames: unknown[];
}

export interface HttpProgressAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

const modules = import.meta.glob<unknown>('../../tests/fixtures/protocol/**/*.json', {
  eager: true,
  import: 'default',
});

const PREFIX = '../../tests/fixtures/protocol/';

export const fixtures: FixtureFile[] = Object.entries(modules)
  .map(([path, content]) => {
    const file = content as { description?: unknown; frames?: unknown };
    if (typeof file.description !== 'string' || !Array.isArray(file.frames)) {
      throw new Error(`${path} is not {"description": ..., "frames": [...]}`);
    }
    return { name: path.slice(PREFIX.length), description: file.description, frames: file.frames };
  })
  .sort((a, b) => a.name.localeCompare(b.name));

const base = (name: string): string => name.split('/').at(-1) ?? name;
const isInvalid = (file: FixtureFile): boolean => file.name.startsWith('invalid/');

const select = (invalid: boolean, prefix: string): FixtureFile[] =>
  fixtures.filter((f) => isInvalid(f) === invalid && base(f.name).startsWith(prefix));

export const validFrameFiles = select(false, 'frame-');
export const validDocumentFiles = select(false, 'document-');
export const invalidFrameFiles = select(true, 'frame-');
/** `invalid/document.json` and any `invalid/document-*.json`. */
export const invalidDocumentFiles = select(true, 'document');

export function fixture(name: string): FixtureFile {
  const found = fixtures.find((f) => f.name === name);
  if (found === undefined) throw new Error(`no fixture ${name}`);
  return found;
}

export function httpProgressAnswers(): HttpProgressAnswer[] {
  return fixture('http-progress.json').frames as HttpProgressAnswer[];
}
