// Follows one reply's event stream with the browser's native EventSource.
//
// EventSource sends the session cookie (same origin), reconnects by itself after a drop and
// then sends Last-Event-ID, so the gateway continues after the last event we saw. A
// finished stream answers 204, which makes EventSource stop for good.
//
// Pitfall: a server event named "error" and a connection failure both reach listeners of
// "error"; only the first is a MessageEvent with data.

export function followReply(url, handlers) {
  const source = new EventSource(url);
  let lastId = 0;
  let finished = false;

  // Defensive: never apply an event twice, whatever the server replays.
  const fresh = (event) => {
    const id = Number(event.lastEventId);
    if (Number.isFinite(id) && id > 0) {
      if (id <= lastId) return false;
      lastId = id;
    }
    return true;
  };
  const end = () => {
    finished = true;
    source.close();
  };

  source.addEventListener("open", () => handlers.onOpen?.(lastId));
  source.addEventListener("token", (event) => {
    if (fresh(event)) handlers.onToken(JSON.parse(event.data));
  });
  source.addEventListener("finish", (event) => {
    if (!fresh(event)) return;
    end();
    handlers.onFinish(JSON.parse(event.data));
  });
  source.addEventListener("error", (event) => {
    if (event instanceof MessageEvent && typeof event.data === "string" && event.data) {
      if (!fresh(event)) return;
      end();
      handlers.onError(JSON.parse(event.data));
      return;
    }
    if (finished) return;
    if (source.readyState === EventSource.CLOSED) {
      // The gateway said no more (204 after the end, 401, 404): ask it for the stored state.
      finished = true;
      handlers.onGone?.();
    } else {
      handlers.onReconnecting?.();
    }
  });

  return {
    close: end,
    get lastEventId() {
      return lastId;
    },
  };
}
