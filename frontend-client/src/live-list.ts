// A live list: one page of the job or video list (lists.ts), kept current over the socket.
//
// Feed mode (staff and admin): subscribe to the tenant feed first, read the page once the server
// confirmed the feed, then apply every state the feed brings. Nothing falls into a gap: a change
// made before the page was read is in the page, one made after the feed was confirmed comes by
// the feed, and an item created meanwhile comes by the feed too (its first state is published
// after its row commits). Each item takes a state only if it comes after the one it holds
// (epoch, seq). After a reconnect the feed does not replay what it missed, so the page is read
// again on every confirmation; while the feed cannot be served (socket down), the page is read
// again every `fallbackRefreshMs`.
//
// Watch mode (every other role: the feed answers them `not_found`): read the page, then watch
// each row that is not terminal on its own topic (`RealtimeClient.watch`, with its polling
// fallback). `track(topic)` adds an item the page does not hold yet (one just created).
//
// A page row is the database's view and may trail the live state; a state is newer than its
// item's row unless the row's status is further along (a status never goes back): a row that
// says DONE beats a state that says PROCESSING at 40 %, which a lost socket left behind.
import { isAfter } from './subscription.js';
import { isTerminal } from './topics.js';
import type {
  FeedHandle,
  FeedName,
  FeedOptions,
  Progress,
  RealtimeError,
  StateDocument,
  Status,
  Timers,
  Topic,
  WatchHandle,
  WatchOptions,
} from './types.js';

export type LiveListMode = 'feed' | 'watch';

export interface LiveItem<Row> {
  topic: Topic;
  /** The list row, once a page named the item. */
  row: Row | undefined;
  /** The newest state document seen for the item. */
  state: StateDocument | undefined;
  /** The live status: the state's, unless the row's is further along (undefined while
   * neither is known: an item just tracked). */
  status: Status | undefined;
  /** The live progress; null when none is known or the item ended. */
  progress: Progress | null;
}

export interface LiveListOptions<Params, Row> {
  /** Which page to keep live (filters, page size); the first page by default. */
  params?: Params;
  /** `feed` or `watch`; by default the feed, and watch mode if the feed is refused. */
  mode?: LiveListMode;
  /** After any change, once per tick: every item, newest first. */
  onChange?: (items: LiveItem<Row>[]) => void;
  /** Right after each change of one item. */
  onItem?: (item: LiveItem<Row>) => void;
  /** The mode in use, once known (and again if `auto` fell back to watching). */
  onMode?: (mode: LiveListMode) => void;
  onError?: (error: RealtimeError | Error) => void;
  /** While the feed is not live, read the page again this often; 0 never. Default 10 s. */
  fallbackRefreshMs?: number;
  /** Items kept; past this, the oldest terminal ones are dropped. Default 500. */
  maxItems?: number;
}

export interface LiveList<Row> {
  /** Every item, newest first. */
  readonly items: LiveItem<Row>[];
  readonly mode: LiveListMode | undefined;
  /** Resolves once the first page was read (or could not be). */
  readonly loaded: Promise<void>;
  /** Read the page again now. */
  refresh(): Promise<void>;
  /** Follow an item the page may not hold yet (watch mode watches it; the feed brings it). */
  track(topic: Topic): void;
  stop(): void;
}

/** What the list needs of the client: its public calls. */
export interface LiveListSource<Params, Row> {
  list(params: Params): Promise<{ results: Row[] }>;
  watchFeed(feed: FeedName, options: FeedOptions): FeedHandle;
  watch(topic: Topic, options: WatchOptions): WatchHandle;
  timers: Timers;
}

interface Entry<Row> {
  topic: Topic;
  row: Row | undefined;
  state: StateDocument | undefined;
  /** When the item was first seen; orders items without a row (new ones) first. */
  seenAt: number;
}

const RANK_PROCESSING = 1;
const RANK_TERMINAL = 2;

/** Statuses only move forward: PENDING/UPLOADED, then PROCESSING, then a terminal one. */
export function statusRank(status: string | undefined): number {
  if (status === undefined) return -1;
  if (isTerminal(status)) return RANK_TERMINAL;
  return status === 'PROCESSING' ? RANK_PROCESSING : 0;
}

export class LiveListController<
  Params,
  Row extends { topic: Topic; status: Status; created_at: string },
> implements LiveList<Row>
{
  private readonly entries = new Map<Topic, Entry<Row>>();
  private readonly watches = new Map<Topic, WatchHandle>();
  private feedHandle: FeedHandle | undefined;
  private current: LiveListMode | undefined;
  private stopped = false;
  private refreshTimer: unknown;
  private changeQueued = false;
  private seen = 0;
  private resolveLoaded!: () => void;
  private firstLoad = true;
  readonly loaded: Promise<void>;

  constructor(
    private readonly feed: FeedName,
    private readonly source: LiveListSource<Params, Row>,
    private readonly options: LiveListOptions<Params, Row>,
  ) {
    this.loaded = new Promise((resolve) => {
      this.resolveLoaded = resolve;
    });
    if (options.mode === 'watch') this.startWatching();
    else this.startFeed();
  }

  get mode(): LiveListMode | undefined {
    return this.current;
  }

  get items(): LiveItem<Row>[] {
    return [...this.entries.values()].sort(newestFirst).map((entry) => itemOf(entry));
  }

  async refresh(): Promise<void> {
    if (this.stopped) return;
    let page: { results: Row[] };
    try {
      page = await this.source.list(this.options.params ?? ({} as Params));
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
      this.loadedOnce();
      return;
    }
    if (this.stopped) return;
    for (const row of page.results) {
      const entry = this.entry(row.topic);
      entry.row = row;
      this.changed(entry);
    }
    if (this.current === 'watch') {
      for (const row of page.results) this.watchRow(row.topic, row.status);
    }
    this.trim();
    this.loadedOnce();
  }

  track(topic: Topic): void {
    if (this.stopped) return;
    this.entry(topic);
    if (this.current === 'watch') this.watchRow(topic, undefined);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.feedHandle?.stop();
    for (const handle of this.watches.values()) handle.stop();
    this.watches.clear();
    this.clearRefresh();
  }

  // --- feed mode ---

  private startFeed(): void {
    this.setMode('feed');
    this.feedHandle = this.source.watchFeed(this.feed, {
      onState: (state) => this.take(state),
      onLive: () => {
        this.clearRefresh();
        void this.refresh();
      },
      onLost: () => {
        // Read the page now, then on a timer, until the feed is confirmed again.
        void this.refresh();
        this.scheduleRefresh();
      },
      onError: (error) => {
        if (error.code === 'not_found' && this.options.mode === undefined) {
          this.feedHandle = undefined;
          this.startWatching();
          return;
        }
        this.fail(error);
      },
    });
  }

  private scheduleRefresh(): void {
    const every = this.options.fallbackRefreshMs ?? 10_000;
    if (every <= 0 || this.refreshTimer !== undefined || this.stopped) return;
    this.refreshTimer = this.source.timers.setTimeout(() => {
      this.refreshTimer = undefined;
      if (this.stopped) return;
      void this.refresh();
      this.scheduleRefresh();
    }, every);
  }

  private clearRefresh(): void {
    if (this.refreshTimer === undefined) return;
    this.source.timers.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  // --- watch mode ---

  private startWatching(): void {
    this.clearRefresh();
    this.setMode('watch');
    for (const entry of this.entries.values()) this.watchRow(entry.topic, itemOf(entry).status);
    void this.refresh();
  }

  private watchRow(topic: Topic, status: Status | undefined): void {
    if (this.watches.has(topic) || (status !== undefined && isTerminal(status))) return;
    const entry = this.entries.get(topic);
    if (entry?.state !== undefined && isTerminal(entry.state.status)) return;
    const handle = this.source.watch(topic, {
      onState: (state) => this.take(state),
      onDone: () => {
        this.watches.delete(topic);
      },
      onError: (error) => this.fail(error),
    });
    this.watches.set(topic, handle);
  }

  // --- items ---

  private take(state: StateDocument): void {
    if (this.stopped) return;
    const entry = this.entry(state.topic as Topic);
    if (entry.state !== undefined && !isAfter(state, entry.state)) return;
    entry.state = state;
    this.changed(entry);
    this.trim();
  }

  private entry(topic: Topic): Entry<Row> {
    let entry = this.entries.get(topic);
    if (entry === undefined) {
      this.seen += 1;
      entry = { topic, row: undefined, state: undefined, seenAt: this.seen };
      this.entries.set(topic, entry);
    }
    return entry;
  }

  private changed(entry: Entry<Row>): void {
    const item = itemOf(entry);
    if (this.options.onItem !== undefined) this.call(() => this.options.onItem?.(item));
    if (this.changeQueued || this.options.onChange === undefined) return;
    this.changeQueued = true;
    queueMicrotask(() => {
      this.changeQueued = false;
      if (!this.stopped) this.call(() => this.options.onChange?.(this.items));
    });
  }

  /** Past `maxItems`, drop the oldest items that ended. */
  private trim(): void {
    const max = this.options.maxItems ?? 500;
    if (this.entries.size <= max) return;
    const ended = [...this.entries.values()]
      .filter((entry) => isTerminal(itemOf(entry).status))
      .sort(newestFirst);
    while (this.entries.size > max && ended.length > 0) {
      const oldest = ended.pop() as Entry<Row>;
      this.entries.delete(oldest.topic);
    }
  }

  private setMode(mode: LiveListMode): void {
    this.current = mode;
    this.call(() => this.options.onMode?.(mode));
  }

  private loadedOnce(): void {
    if (!this.firstLoad) return;
    this.firstLoad = false;
    this.resolveLoaded();
  }

  private fail(error: RealtimeError | Error): void {
    this.call(() => this.options.onError?.(error));
  }

  private call(callback: () => void): void {
    try {
      callback();
    } catch {
      // A throwing callback must not stop the list.
    }
  }
}

function itemOf<Row extends { topic: Topic; status: Status }>(entry: Entry<Row>): LiveItem<Row> {
  const { state, row } = entry;
  const rowStatus = row?.status;
  if (state === undefined || statusRank(rowStatus) > statusRank(state.status)) {
    return {
      topic: entry.topic,
      row,
      state,
      status: rowStatus ?? state?.status,
      progress: null,
    };
  }
  return {
    topic: entry.topic,
    row,
    state,
    status: state.status,
    progress: isTerminal(state.status) ? null : state.progress,
  };
}

/** Items the page did not name (new ones) first, latest seen first; then rows, newest first. */
function newestFirst<Row extends { created_at: string }>(a: Entry<Row>, b: Entry<Row>): number {
  if (a.row === undefined || b.row === undefined) {
    if (a.row !== undefined) return 1;
    if (b.row !== undefined) return -1;
    return b.seenAt - a.seenAt;
  }
  const byTime = Date.parse(b.row.created_at) - Date.parse(a.row.created_at);
  return byTime !== 0 ? byTime : b.seenAt - a.seenAt;
}
