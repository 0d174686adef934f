package dev.llmrelay.gateway.policy;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.RedisClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;

/**
 * With the shared Redis ({@code GATEWAY_LIMITS_STORE=redis}): after a policy change, tells the other
 * instances at once (PUBLISH), so they reload without waiting for their next poll. Only a nudge: the
 * version row stays the truth, and the poll still catches whatever a lost message missed.
 */
@Component
@ConditionalOnProperty(prefix = "gateway.limits", name = "store", havingValue = "redis")
class RedisPolicyNudge {

    static final String CHANNEL = "llm-relay:policy-version";
    private static final Logger log = LoggerFactory.getLogger(RedisPolicyNudge.class);

    private final RedisClient client;
    private final PolicyVersions versions;
    private final ExecutorService reloads = Executors.newSingleThreadExecutor(runnable -> {
        Thread thread = new Thread(runnable, "policy-nudge");
        thread.setDaemon(true);
        return thread;
    });
    // connected lazily (and retried every few seconds), so the gateway starts while Redis is down
    private volatile StatefulRedisConnection<String, String> publisher;
    private volatile StatefulRedisPubSubConnection<String, String> subscriber;

    RedisPolicyNudge(GatewayProperties gateway, PolicyVersions versions) {
        this.versions = versions;
        RedisURI uri = RedisURI.create(gateway.redis().url());
        uri.setTimeout(gateway.redis().timeout());
        this.client = RedisClient.create(uri);
        client.setOptions(RedisClientOptions.bounded(gateway.redis().timeout()));
        versions.onLocalChange(this::publish);
        connect();
    }

    @Scheduled(fixedDelayString = "PT5S", initialDelayString = "PT5S")
    synchronized void connect() {
        try {
            if (publisher == null) {
                publisher = client.connect();
            }
            if (subscriber == null) {
                StatefulRedisPubSubConnection<String, String> subscribed = client.connectPubSub();
                subscribed.addListener(new RedisPubSubAdapter<>() {
                    @Override
                    public void message(String channel, String version) {
                        // off Lettuce's event loop: a reload reads the database
                        reloads.execute(versions::refresh);
                    }
                });
                subscribed.sync().subscribe(CHANNEL); // Lettuce resubscribes after a reconnect
                subscriber = subscribed;
            }
        } catch (RedisException e) {
            log.warn("Redis not reachable for policy nudges (the poll still reloads): {}", e.toString());
        }
    }

    private void publish() {
        StatefulRedisConnection<String, String> current = publisher;
        if (current == null) {
            return;
        }
        try {
            current.async().publish(CHANNEL, Long.toString(versions.loadedVersion()));
        } catch (RedisException e) {
            log.debug("policy nudge not sent: {}", e.toString());
        }
    }

    @jakarta.annotation.PreDestroy
    void close() {
        reloads.shutdownNow();
        client.shutdown();
    }
}
