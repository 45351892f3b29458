// Public entry point: `import { RealtimeClient } from '<path>/dist/index.js'` works in a browser.
export { DEFAULT_MAX_WATCH_MS, RealtimeClient, defaultWsUrl } from './client.js';
export {
  Backoff,
  backoffCeiling,
  backoffDelay,
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
} from './backoff.js';
export { pollInterval, parseRetryAfter } from './schedule.js';
export { parseServerFrame, parseStateDocument } from './protocol.js';
export { ApiError, HttpStatusError } from './http.js';
export { jobListPath, videoListPath, JOB_LIST_PATH, VIDEO_LIST_PATH } from './lists.js';
export type {
  ApiErrorBody,
  JobListItem,
  JobListParams,
  ListPage,
  VideoListItem,
  VideoListParams,
} from './lists.js';
export type { Parsed } from './protocol.js';
export { FEED_NAMES, feedOf, isFeedName } from './feeds.js';
export type { FeedState } from './feeds.js';
export { LiveListController, statusRank } from './live-list.js';
export type { LiveItem, LiveList, LiveListMode, LiveListOptions } from './live-list.js';
export {
  CLOSE_ORIGIN,
  CLOSE_POLICY,
  CLOSE_UNAUTHENTICATED,
  SERVER_ERROR_CODES,
  SUBPROTOCOL,
} from './codes.js';
export type { TopicState } from './subscription.js';
export {
  canonicalTopic,
  isTerminal,
  isTopic,
  parseTopic,
  progressPath,
  detailPath,
  cancelPath,
} from './topics.js';
export type {
  ClientFrame,
  ClientOptions,
  ConnectionStatus,
  DetailRecord,
  ErrorFrame,
  FeedHandle,
  FeedName,
  FeedOptions,
  FetchLike,
  JobStatus,
  Logger,
  Progress,
  RealtimeError,
  RealtimeErrorCode,
  ServerErrorCode,
  ServerFrame,
  StateDocument,
  StateFrame,
  Status,
  Timers,
  TokenRequest,
  Topic,
  VideoStatus,
  WatchCallbacks,
  WatchHandle,
  WatchOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
