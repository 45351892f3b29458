// Many real browser clients in one Node process, for the fault suite's ASGI kill scenario
// (tests/faults/test_asgi_kill.py): each is the project's own RealtimeClient (frontend-client,
// built into dist/) with its own WebSocket, reconnect backoff, polling fallback and
// (epoch, seq) resubscription, exactly as a page runs it. Node 20's WebSocket
// (--experimental-websocket) stands in for the browser's.
//
// Usage: node --experimental-websocket browser_clients.mjs '<json>'
//   {"dist": ".../frontend-client/dist", "baseUrl": "http://127.0.0.1:PORT", "token": "...",
//    "topics": ["job:…", …], "perTopic": 50}
// Every 250 ms it prints one line `CLIENTS {json}` with the counts below; on SIGTERM a last
// one, then it exits.

const config = JSON.parse(process.argv[2]);
const { RealtimeClient } = await import(`${config.dist}/index.js`);

const clients = [];
const totals = { subscribes: 0, resubscribes: 0, opened: 0, closes_supplied: 0 };

// The global WebSocket, counting what the client sends: a subscribe with `since` and `epoch`
// is a resubscription after a reconnect. One repair: Node 20's (undici, experimental) fires
// `error` but never `close` when the connection cannot be made (the socket stays CONNECTING),
// where a browser fires `close` (code 1006) right after `error`, as the WebSocket standard
// says and the client relies on; without it no client would ever try a second time.
class CountingWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    totals.opened += 1;
    let closed = false;
    this.addEventListener('close', () => {
      closed = true;
    });
    this.addEventListener('error', () => {
      setTimeout(() => {
        if (closed) return;
        closed = true;
        totals.closes_supplied += 1;
        this.onclose?.({ code: 1006, reason: '', wasClean: false });
      }, 50);
    });
  }

  send(data) {
    const frame = JSON.parse(data);
    if (frame.type === 'subscribe') {
      totals.subscribes += 1;
      if (frame.since !== undefined && frame.epoch !== undefined) totals.resubscribes += 1;
    }
    super.send(data);
  }
}

for (const topic of config.topics) {
  for (let i = 0; i < config.perTopic; i += 1) {
    const seen = { topic, status: null, epoch: 0, seq: 0, states: 0, done: 0, errors: 0, via: null };
    const connection = { status: 'idle', reconnects: 0, everConnected: false };
    const client = new RealtimeClient({
      baseUrl: config.baseUrl,
      getToken: async () => config.token,
      WebSocketImpl: CountingWebSocket,
      logger: { warn: () => {} },
    });
    client.onStatus((status) => {
      if (status === 'connected') {
        if (connection.everConnected && connection.status !== 'connected') connection.reconnects += 1;
        connection.everConnected = true;
      }
      connection.status = status;
    });
    client.watch(topic, {
      onState: (state) => {
        seen.status = state.status;
        seen.epoch = state.epoch ?? 0;
        seen.seq = state.seq;
        seen.states += 1;
        if (['DONE', 'FAILED', 'READY'].includes(state.status)) {
          // The socket delivered it if it was connected; otherwise HTTP polling did.
          seen.via = connection.status === 'connected' ? 'socket' : 'polling';
        }
      },
      onDone: () => {
        seen.done += 1;
      },
      onError: () => {
        seen.errors += 1;
      },
    });
    clients.push({ client, seen, connection });
  }
}

function summary() {
  const byConnection = {};
  const byStatus = {};
  let done = 0;
  let doneTwice = 0;
  let reconnected = 0;
  let settled = 0;
  let states = 0;
  let errors = 0;
  const doneVia = {};
  for (const { seen, connection } of clients) {
    if (seen.via !== null) doneVia[seen.via] = (doneVia[seen.via] ?? 0) + 1;
    byConnection[connection.status] = (byConnection[connection.status] ?? 0) + 1;
    byStatus[seen.status ?? 'none'] = (byStatus[seen.status ?? 'none'] ?? 0) + 1;
    if (seen.done > 0) done += 1;
    if (seen.done > 1) doneTwice += 1;
    if (connection.reconnects > 0) reconnected += 1;
    // Back after the kill: reconnected, or its terminal state already in hand.
    if (connection.reconnects > 0 || seen.done > 0) settled += 1;
    states += seen.states;
    errors += seen.errors;
  }
  return {
    clients: clients.length,
    connection: byConnection,
    status: byStatus,
    done,
    done_via: doneVia,
    done_twice: doneTwice,
    reconnected,
    settled,
    states,
    errors,
    ...totals,
    at: Date.now(),
  };
}

const report = () => process.stdout.write(`CLIENTS ${JSON.stringify(summary())}\n`);
const timer = setInterval(report, 250);
process.on('SIGTERM', () => {
  clearInterval(timer);
  report();
  for (const { client } of clients) client.close();
  process.exit(0);
});
