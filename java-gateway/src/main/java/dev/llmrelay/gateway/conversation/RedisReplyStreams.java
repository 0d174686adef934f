package dev.llmrelay.gateway.conversation;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import jakarta.annotation.PreDestroy;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.context.SmartLifecycle;
import org.springframework.http.MediaType;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.RedisClientOptions;
import io.lettuce.core.Range;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.XReadArgs;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.Base16;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import io.lettuce.core.resource.ClientResources;

/**
 * With {@code GATEWAY_LIMITS_STORE=redis}, replies are shared by every gateway instance: each event a
 * reply logs is also appended to a Redis Stream per reply, with the explicit entry id {@code 0-<event id>}
 * so the stream's ids are the SSE ids the page resumes from with Last-Event-ID. An instance asked to
 * follow a reply it is not generating reads that stream (XREAD from the cursor: first what is stored,
 * then blocking for live entries) until the reply's end event. A stop pressed on another instance is
 * published on a channel every instance listens to; the one generating the reply cancels its upstream.
 *
 * <p>Appends are asynchronous on one connection (never blocking the upstream's thread), and each is
 * conditional: a script appends an event only right after the one before it, so a reply's stream never
 * has a gap. An event that could not be appended (Redis down or restarted empty, or a connection not open
 * yet) puts the reply behind; a repairer appends the missing events from this instance's own log, in
 * order, as soon as Redis answers again, and until then the reply's later events wait too. A follower
 * elsewhere therefore never reads past missing text: it sees the reply stall and then catch up. Should
 * the log be gone first (the reply retired from {@link ReplyRegistry}), the stream is deleted, and
 * followers fall back to the stored message. A Redis outage never costs this instance its own stream.
 */
@Component
@ConditionalOnProperty(prefix = "gateway.limits", name = "store", havingValue = "redis")
class RedisReplyStreams implements ReplyGeneration.Feed, SmartLifecycle {

    static final String CANCEL_CHANNEL = "llm-relay:reply-cancel";

    private static final Logger log = LoggerFactory.getLogger(RedisReplyStreams.class);
    /** Bounds a runaway reply's stream; a reply has at most max_tokens token events plus its end. */
    private static final long MIN_MAXLEN = 1000;
    /** A reply whose gateway died never gets its end: its stream expires this long after its last event. */
    private static final Duration LIVE_TTL = Duration.ofHours(1);

    // KEYS: the reply's stream. ARGV: ttl ms while live, ttl ms once ended, maxlen, then (id, event, data)
    // per event in id order. Appends each event whose id follows the stream's last one, stops at a gap,
    // skips events already there. Returns the stream's last event id.
    private static final String APPEND = """
            local top = 0
            local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
            if #last > 0 then top = tonumber(string.match(last[1][1], '%-(%d+)$')) end
            local appended, ended = false, false
            for i = 4, #ARGV, 3 do
              local id = tonumber(ARGV[i])
              if id > top + 1 then break end
              if id == top + 1 then
                redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. id, 'event', ARGV[i + 1], 'data', ARGV[i + 2])
                top, appended = id, true
                if ARGV[i + 1] == 'finish' or ARGV[i + 1] == 'error' then ended = true end
              end
            end
            if appended then redis.call('PEXPIRE', KEYS[1], ended and ARGV[2] or ARGV[1]) end
            return top
            """;
    private static final int REPAIR_BATCH = 200; // events per repairing script call
    private static final Duration REPAIR_RETRY = Duration.ofMillis(500);

    private final ClientResources resources;
    private final RedisClient client;
    private final String appendSha;
    // replies with events not in Redis yet: the repairer appends them, later events wait behind them
    private final Set<String> behind = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService repairer = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "redis-reply-repair");
        thread.setDaemon(true);
        return thread;
    });
    private final ReplyRegistry replies;
    private final ObjectMapper json;
    // connected lazily (and retried every few seconds), so the gateway starts while Redis is down
    private volatile StatefulRedisConnection<String, String> connection;
    private volatile StatefulRedisPubSubConnection<String, String> cancels;
    private final Duration timeout;
    private final Duration retention;
    private final Duration streamTimeout;
    private final Duration block;
    private final long maxLen;
    private final ExecutorService readers = Executors.newCachedThreadPool(runnable -> {
        Thread thread = new Thread(runnable, "redis-reply-reader");
        thread.setDaemon(true);
        return thread;
    });
    private final Set<ResponseBodyEmitter> open = ConcurrentHashMap.newKeySet();
    private volatile boolean running;

    RedisReplyStreams(GatewayProperties gateway, BrowserProperties browser, ReplyRegistry replies, ObjectMapper json) {
        this.replies = replies;
        this.json = json;
        this.timeout = gateway.redis().timeout();
        this.retention = browser.replyRetention();
        this.streamTimeout = gateway.timeouts().stream();
        this.block = Duration.ofMillis(Math.max(200, Math.min(1000, gateway.timeouts().heartbeat().toMillis())));
        this.maxLen = Math.max(MIN_MAXLEN, 2L * browser.maxTokens() + 16);
        RedisURI uri = RedisURI.create(gateway.redis().url());
        uri.setTimeout(timeout);
        this.resources = RedisClientOptions.resources();
        this.client = RedisClient.create(resources, uri);
        client.setOptions(RedisClientOptions.bounded(timeout));
        this.appendSha = Base16.digest(APPEND.getBytes(StandardCharsets.UTF_8));
        repairer.scheduleWithFixedDelay(this::repair, REPAIR_RETRY.toMillis(), REPAIR_RETRY.toMillis(),
                TimeUnit.MILLISECONDS);
        connect();
    }

    /** Opens the shared connection and the cancel subscription if they are not open yet. */
    @Scheduled(fixedDelayString = "PT5S", initialDelayString = "PT5S")
    void connect() {
        try {
            // every round: a restarted Redis starts with an empty script cache, and appends use EVALSHA
            connection().sync().scriptLoad(APPEND);
            if (cancels == null) {
                StatefulRedisPubSubConnection<String, String> subscribed = client.connectPubSub();
                subscribed.addListener(new RedisPubSubAdapter<>() {
                    @Override
                    public void message(String channel, String messageId) {
                        // off Lettuce's event loop: cancelling stores the stopped reply in the database
                        readers.execute(() -> replies.find(messageId).ifPresent(ReplyGeneration::cancel));
                    }
                });
                subscribed.sync().subscribe(CANCEL_CHANNEL); // Lettuce resubscribes after a reconnect
                cancels = subscribed;
            }
        } catch (RedisException e) {
            log.warn("Redis not reachable for shared browser replies (retrying): {}", e.toString());
        }
    }

    private synchronized StatefulRedisConnection<String, String> connection() {
        if (connection == null) {
            connection = client.connect();
        }
        return connection;
    }

    private static String key(String messageId) {
        return "llm-relay:reply:" + messageId;
    }

    // ---- the owning instance --------------------------------------------------------------

    /** Called under the reply's lock, so entries go out in event order. */
    @Override
    public void publish(String messageId, ReplyGeneration.Event event) {
        if (behind.contains(messageId)) {
            return; // the repairer appends it after the events before it
        }
        StatefulRedisConnection<String, String> shared = connection;
        if (shared == null) {
            fallBehind(messageId); // never block the upstream's thread on connecting: connect() retries
            return;
        }
        try {
            RedisFuture<Long> appended = shared.async().evalsha(appendSha, ScriptOutputType.INTEGER,
                    new String[] {key(messageId)}, appendArgs(List.of(event)));
            appended.whenComplete((top, failed) -> {
                if (failed != null || top == null || top < event.id()) {
                    fallBehind(messageId);
                }
            });
        } catch (RedisException e) {
            fallBehind(messageId);
        }
    }

    private void fallBehind(String messageId) {
        if (behind.add(messageId)) {
            log.warn("reply {}: events not in Redis yet, appending them once it answers", messageId);
            try {
                repairer.execute(this::repair);
            } catch (RejectedExecutionException shuttingDown) {
                // the scheduled repair is gone with the instance: followers fall back to the database
            }
        }
    }

    /** Appends what the replies that fell behind miss, from this instance's log, in order. */
    void repair() {
        for (String messageId : behind) {
            try {
                Optional<ReplyGeneration> generation = replies.find(messageId);
                RedisCommands<String, String> redis = connection().sync();
                if (generation.isEmpty()) {
                    // the log is gone: no stream rather than one with a hole (followers read the database)
                    redis.del(key(messageId));
                    behind.remove(messageId);
                    continue;
                }
                long top = 0; // from the first event: the script skips those already in the stream
                List<ReplyGeneration.Event> missing;
                while (!(missing = generation.get().eventsAfter(top)).isEmpty()) {
                    List<ReplyGeneration.Event> batch = missing.subList(0, Math.min(REPAIR_BATCH, missing.size()));
                    String[] keys = {key(messageId)};
                    String[] args = appendArgs(batch);
                    Long reached;
                    try {
                        reached = redis.evalsha(appendSha, ScriptOutputType.INTEGER, keys, args);
                    } catch (RedisNoScriptException e) {
                        reached = redis.eval(APPEND, ScriptOutputType.INTEGER, keys, args); // Redis restarted
                    }
                    if (reached == top) {
                        break; // no progress (the stream changed under us): the next round retries
                    }
                    top = reached; // may be lower than assumed (Redis restarted empty): goes on from there
                }
                behind.remove(messageId);
                // an event logged while this ran may have been skipped as behind: take it at once
                if (generation.get().lastEventId() > top) {
                    behind.add(messageId);
                    repairer.execute(this::repair);
                } else {
                    log.info("reply {}: shared again, {} events in Redis", messageId, top);
                }
            } catch (RedisException e) {
                log.debug("reply {} still behind: {}", messageId, e.toString());
                return; // Redis is still away: the next round retries
            }
        }
    }

    private String[] appendArgs(List<ReplyGeneration.Event> events) {
        List<String> args = new ArrayList<>(3 + 3 * events.size());
        args.add(Long.toString(LIVE_TTL.toMillis()));
        args.add(Long.toString(retention.toMillis()));
        args.add(Long.toString(maxLen));
        for (ReplyGeneration.Event event : events) {
            args.add(Long.toString(event.id()));
            args.add(event.name());
            args.add(event.data());
        }
        return args.toArray(String[]::new);
    }

    /** Asks whichever instance generates the reply to stop it (a no-op if none does any more). */
    void requestCancel(String messageId) {
        try {
            connection().sync().publish(CANCEL_CHANNEL, messageId);
        } catch (RedisException e) {
            throw unavailable(e);
        }
    }

    private static ApiProblem unavailable(RedisException e) {
        log.warn("shared browser replies unavailable: {}", e.toString());
        return ApiProblem.unavailable("replies_unavailable",
                "Replies generated by other gateway instances cannot be reached right now: try again.", 1);
    }

    /** The text of a reply generated elsewhere so far, from its stream's token events. */
    Optional<String> textSoFar(String messageId) {
        try {
            StringBuilder text = new StringBuilder();
            for (StreamMessage<String, String> entry : connection().sync().xrange(key(messageId),
                    Range.create("-", "+"))) {
                if ("token".equals(entry.getBody().get("event"))) {
                    text.append(json.readTree(entry.getBody().get("data")).path("text").asText());
                }
            }
            return Optional.of(text.toString());
        } catch (RedisException | JsonProcessingException e) {
            return Optional.empty(); // the stored content stands in
        }
    }

    // ---- any instance -----------------------------------------------------------------------

    /**
     * Follows a reply generated elsewhere after {@code lastEventId}; empty when there is nothing left to send.
     *
     * @param streaming whether the stored reply is still being generated (a reply may not have logged
     *                  an event yet, and one whose gateway died ends when its lease runs out)
     * @param release   ends the HTTP exchange after a failed write
     */
    Optional<ResponseBodyEmitter> follow(String messageId, long lastEventId, BooleanSupplier streaming,
            Runnable release) {
        String key = key(messageId);
        List<StreamMessage<String, String>> last;
        try {
            last = connection().sync().xrevrange(key, Range.create("-", "+"), io.lettuce.core.Limit.from(1));
        } catch (RedisException e) {
            throw unavailable(e);
        }
        boolean ended = !last.isEmpty() && isEnd(last.get(0).getBody().get("event"));
        if (ended ? lastEventId >= eventId(last.get(0)) : last.isEmpty() && !streaming.getAsBoolean()) {
            return Optional.empty();
        }
        ResponseBodyEmitter emitter = new ResponseBodyEmitter(streamTimeout.toMillis());
        Reader reader = new Reader(key, lastEventId, emitter, streaming, release);
        emitter.onCompletion(reader::stop);
        emitter.onTimeout(reader::stop);
        emitter.onError(error -> reader.stop());
        open.add(emitter);
        readers.execute(reader);
        return Optional.of(emitter);
    }

    private final class Reader implements Runnable {

        private final String key;
        private final ResponseBodyEmitter emitter;
        private final BooleanSupplier streaming;
        private final Runnable release;
        private long cursor;
        private volatile boolean stopped;

        Reader(String key, long cursor, ResponseBodyEmitter emitter, BooleanSupplier streaming, Runnable release) {
            this.key = key;
            this.cursor = cursor;
            this.emitter = emitter;
            this.streaming = streaming;
            this.release = release;
        }

        void stop() {
            stopped = true;
            open.remove(emitter);
        }

        @Override
        public void run() {
            // its own connection: a blocking XREAD holds the connection it runs on
            try (StatefulRedisConnection<String, String> reading = client.connect()) {
                reading.setTimeout(block.plus(timeout));
                RedisCommands<String, String> redis = reading.sync();
                emitter.send(ReplySubscriber.GREETING, MediaType.TEXT_EVENT_STREAM);
                while (!stopped) {
                    List<StreamMessage<String, String>> batch = redis.xread(
                            XReadArgs.Builder.block(block).count(256), XReadArgs.StreamOffset.from(key, "0-" + cursor));
                    if (batch == null || batch.isEmpty()) {
                        emitter.send(ReplySubscriber.PING, MediaType.TEXT_EVENT_STREAM);
                        if (redis.exists(key) == 0 && !streaming.getAsBoolean()) {
                            break; // the reply's gateway stopped before its end, or its events expired
                        }
                        continue;
                    }
                    for (StreamMessage<String, String> entry : batch) {
                        String name = entry.getBody().get("event");
                        cursor = eventId(entry);
                        emitter.send(ReplyGeneration.Event.of(cursor, name, entry.getBody().get("data")).wire(),
                                MediaType.TEXT_EVENT_STREAM);
                        if (isEnd(name)) {
                            stopped = true;
                            break;
                        }
                    }
                }
                open.remove(emitter);
                emitter.complete();
            } catch (IOException | IllegalStateException gone) {
                // the browser went away (it reconnects with Last-Event-ID if it can)
                stop();
                release.run();
            } catch (RedisException e) {
                // the browser reconnects (here or elsewhere) and resumes after the last event it got
                log.warn("following {} from Redis failed: {}", key, e.toString());
                stop();
                emitter.complete();
            }
        }
    }

    private static boolean isEnd(String eventName) {
        return "finish".equals(eventName) || "error".equals(eventName);
    }

    private static long eventId(StreamMessage<String, String> entry) {
        String id = entry.getId();
        return Long.parseLong(id.substring(id.indexOf('-') + 1));
    }

    // ---- shutdown: like ReplyRegistry, before the web server's graceful shutdown waits for open requests ----

    @Override
    public void start() {
        running = true;
    }

    /** Ends the streams this instance serves from Redis; browsers reconnect to another instance. */
    @Override
    public void stop() {
        running = false;
        for (ResponseBodyEmitter emitter : open) {
            open.remove(emitter);
            try {
                emitter.complete();
            } catch (RuntimeException alreadyEnded) {
                // the exchange ended meanwhile
            }
        }
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @PreDestroy
    void close() {
        stop();
        readers.shutdownNow();
        try {
            readers.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        repairer.shutdownNow();
        client.shutdown(); // closes its connections
        resources.shutdown();
    }
}
