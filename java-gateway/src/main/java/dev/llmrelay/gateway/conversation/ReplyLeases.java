package dev.llmrelay.gateway.conversation;

import java.time.Clock;
import java.time.Duration;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

/**
 * A reply's {@code streaming} row is only finished by the gateway generating it, so a gateway that
 * crashes leaves it streaming for good. Each gateway renews a lease ({@code alive_at}) on the replies
 * it generates every {@link #RENEW_EVERY}; a streaming reply whose lease is older than {@link #LEASE}
 * has no gateway behind it and is marked failed, at start-up and every {@link #SWEEP_EVERY}.
 *
 * <p>A lease rather than "older than this instance's start": gateways sharing a database cannot tell
 * a crashed peer's reply from a live peer's by time alone, and a lease needs no instance identity.
 */
@Component
class ReplyLeases {

    /** Four renewals fit in a lease: a slow database or a GC pause does not end a live reply. */
    static final Duration LEASE = Duration.ofMinutes(1);
    static final String RENEW_EVERY = "PT15S";
    static final String SWEEP_EVERY = "PT30S";
    static final String ABANDONED = "The gateway stopped before this reply finished.";

    private static final Logger log = LoggerFactory.getLogger(ReplyLeases.class);

    private final ConversationRepository repository;
    private final ReplyRegistry replies;
    private final Clock clock = Clock.systemUTC();

    ReplyLeases(ConversationRepository repository, ReplyRegistry replies) {
        this.repository = repository;
        this.replies = replies;
    }

    @Scheduled(fixedDelayString = RENEW_EVERY, initialDelayString = RENEW_EVERY)
    void renew() {
        repository.renewLeases(replies.generating(), clock.instant());
    }

    @EventListener(ApplicationReadyEvent.class)
    @Scheduled(fixedDelayString = SWEEP_EVERY, initialDelayString = SWEEP_EVERY)
    void failAbandoned() {
        int failed = repository.failAbandonedReplies(ABANDONED, clock.instant().minus(LEASE));
        if (failed > 0) {
            log.info("marked {} browser replies failed: their gateway stopped renewing them", failed);
        }
    }
}
