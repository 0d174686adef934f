package dev.llmrelay.gateway.keys;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

import org.springframework.stereotype.Service;

import io.swagger.v3.oas.annotations.media.Schema;

import dev.llmrelay.gateway.system.GatewayProperties;

/**
 * Mints, finds and edits API keys. Plaintext keys exist only in the answer to {@link #create}; the
 * database holds their SHA-256.
 */
@Service
public class ApiKeyService {

    /** last_used_at is a hint for operators, so it is written at most this often per key. */
    private static final Duration TOUCH_INTERVAL = Duration.ofSeconds(30);

    private final ApiKeyRepository repository;
    private final GatewayProperties properties;
    private final Clock clock = Clock.systemUTC();
    private final SecureRandom random = new SecureRandom();
    /**
     * Keys by hash as last read, so that a request does not read the database to authenticate (the relay's
     * hot path); trusted for {@code gateway.key-cache-ttl}, dropped at once by any change made here.
     */
    private final Map<String, CachedKey> cache = new ConcurrentHashMap<>();
    private final long cacheTtlNanos;
    /** bumped after every change: a read that raced a change is not cached */
    private final java.util.concurrent.atomic.AtomicLong changes = new java.util.concurrent.atomic.AtomicLong();

    private record CachedKey(Optional<ApiKey> key, long readAtNanos) {
    }

    ApiKeyService(ApiKeyRepository repository, GatewayProperties properties) {
        this.repository = repository;
        this.properties = properties;
        this.cacheTtlNanos = properties.keyCacheTtl().toNanos();
    }

    /** A new key and its plaintext, shown once. */
    public record CreatedKey(ApiKey key, String plaintext) {
    }

    /** Limits to set; null fields keep the default (create) or current value (update); no other member. */
    @Schema(additionalProperties = Schema.AdditionalPropertiesValue.FALSE)
    public record KeyChanges(
            @Schema(types = {"string", "null"}, maxLength = 200) String name,
            @Schema(types = {"integer", "null"}, format = "int32", minimum = "1") Integer requestsPerMinute,
            @Schema(types = {"integer", "null"}, format = "int32", minimum = "1") Integer tokensPerMinute,
            @Schema(types = {"integer", "null"}, format = "int32", minimum = "1") Integer maxConcurrentStreams,
            @Schema(types = {"boolean", "null"}) Boolean enabled,
            @Schema(types = {"boolean", "null"}, description = "may be served by a model's fallback route "
                    + "(docs/operations.md, degradation)") Boolean allowFallback,
            @Schema(types = {"object", "null"}, implementation = BudgetSetting.class, description = "tokens per "
                    + "day, month or in total; null removes it (PATCH), absent keeps it") BudgetSetting budget) {

        public KeyChanges(String name, Integer requestsPerMinute, Integer tokensPerMinute,
                Integer maxConcurrentStreams, Boolean enabled) {
            this(name, requestsPerMinute, tokensPerMinute, maxConcurrentStreams, enabled, null, null);
        }

        public KeyChanges(String name, Integer requestsPerMinute, Integer tokensPerMinute,
                Integer maxConcurrentStreams, Boolean enabled, Boolean allowFallback) {
            this(name, requestsPerMinute, tokensPerMinute, maxConcurrentStreams, enabled, allowFallback, null);
        }
    }

    /** A budget as the admin API writes it (checked by the controller: tokens >= 1, a known period). */
    @Schema(additionalProperties = Schema.AdditionalPropertiesValue.FALSE)
    public record BudgetSetting(
            @Schema(requiredMode = Schema.RequiredMode.REQUIRED, format = "int64", minimum = "1") Long tokens,
            @Schema(requiredMode = Schema.RequiredMode.REQUIRED, allowableValues = {"day", "month", "total"},
                    description = "UTC calendar days or months, or the key's whole life") String period) {

        Budget toBudget() {
            return new Budget(tokens, Budget.Period.ofWire(period));
        }
    }

    public CreatedKey create(KeyChanges request) {
        byte[] secret = new byte[32];
        random.nextBytes(secret);
        String plaintext = "sk-relay-" + Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
        return new CreatedKey(insert(request, plaintext), plaintext);
    }

    /** Creates the bootstrap key unless a key with that plaintext already exists. */
    public boolean createIfAbsent(String name, String plaintext) {
        if (repository.existsByHash(sha256(plaintext))) {
            return false;
        }
        insert(new KeyChanges(name, null, null, null, null), plaintext);
        return true;
    }

    private ApiKey insert(KeyChanges request, String plaintext) {
        String name = request.name() == null || request.name().isBlank() ? "unnamed" : request.name().strip();
        long id = repository.insert(name, sha256(plaintext), plaintext.substring(0, Math.min(12, plaintext.length())),
                orDefault(request.requestsPerMinute(), properties.defaultRequestsPerMinute()),
                orDefault(request.tokensPerMinute(), properties.defaultTokensPerMinute()),
                orDefault(request.maxConcurrentStreams(), properties.defaultMaxConcurrentStreams()),
                clock.instant());
        changed(); // a cached miss for this plaintext must not refuse the new key
        ApiKey created = repository.findById(id).orElseThrow();
        if (Boolean.FALSE.equals(request.enabled()) || request.allowFallback() != null || request.budget() != null) {
            return update(id, new KeyChanges(null, null, null, null, request.enabled(), request.allowFallback(),
                    request.budget()), request.budget() != null).orElseThrow();
        }
        return created;
    }

    /** The enabled key with this plaintext, if any; marks it used. */
    public Optional<ApiKey> authenticate(String plaintext) {
        if (plaintext == null || plaintext.isBlank()) {
            return Optional.empty();
        }
        String hash = sha256(plaintext.strip());
        long now = System.nanoTime();
        CachedKey cached = cache.get(hash);
        if (cached != null && now - cached.readAtNanos() < cacheTtlNanos) {
            return cached.key();
        }
        long changesBefore = changes.get();
        Optional<ApiKey> key = repository.findByHash(hash).filter(ApiKey::enabled);
        key.ifPresent(this::touch);
        if (cacheTtlNanos > 0 && changes.get() == changesBefore) {
            if (cache.size() > 100_000) {
                cache.clear(); // bad keys sent in a flood must not grow it without bound
            }
            cache.put(hash, new CachedKey(key, now));
        }
        return key;
    }

    private void touch(ApiKey key) {
        Instant now = clock.instant();
        if (key.lastUsedAt() == null || key.lastUsedAt().plus(TOUCH_INTERVAL).isBefore(now)) {
            repository.touch(key.id(), now);
        }
    }

    public List<ApiKey> list() {
        return repository.findAll();
    }

    public Optional<ApiKey> find(long id) {
        return repository.findById(id);
    }

    public Optional<ApiKey> update(long id, KeyChanges changes) {
        return update(id, changes, false);
    }

    /** {@code replaceBudget}: write {@code changes.budget()}, null removing it (else the budget is kept). */
    @org.springframework.transaction.annotation.Transactional
    public Optional<ApiKey> update(long id, KeyChanges changes, boolean replaceBudget) {
        String name = changes.name() == null || changes.name().isBlank() ? null : changes.name().strip();
        if (!repository.update(id, name, changes.requestsPerMinute(), changes.tokensPerMinute(),
                changes.maxConcurrentStreams(), changes.enabled(), changes.allowFallback())) {
            return Optional.empty();
        }
        if (replaceBudget) {
            repository.setBudget(id, changes.budget() == null ? null : changes.budget().toBudget());
        }
        changed(); // limits, enabled and fallback apply to the next request
        return repository.findById(id);
    }

    public boolean delete(long id) {
        boolean deleted = repository.delete(id);
        changed();
        return deleted;
    }

    private void changed() {
        changes.incrementAndGet();
        cache.clear();
    }

    private static int orDefault(Integer value, int fallback) {
        return value == null ? fallback : value;
    }

    static String sha256(String plaintext) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(plaintext.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JRE", e);
        }
    }
}
