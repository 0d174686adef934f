package dev.llmrelay.gateway.conversation;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Instant;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Optional;

import jakarta.servlet.http.Cookie;
import jakarta.servlet.http.HttpServletRequest;

import org.springframework.http.ResponseCookie;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Service;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.keys.ApiKeyService;

/**
 * Browser sessions: an API key is exchanged once for a random session token in an HttpOnly,
 * SameSite=Strict cookie, so the page never keeps the key and EventSource (which cannot send
 * an Authorization header) is authenticated by the cookie.
 */
@Service
class BrowserSessionService {

    static final String COOKIE = "relay_session";

    private final BrowserSessionRepository repository;
    private final ApiKeyService keys;
    private final BrowserProperties properties;
    private final Clock clock = Clock.systemUTC();
    private final SecureRandom random = new SecureRandom();

    BrowserSessionService(BrowserSessionRepository repository, ApiKeyService keys, BrowserProperties properties) {
        this.repository = repository;
        this.keys = keys;
        this.properties = properties;
    }

    /** A new session for this key, as the cookie to set; 401 for an unknown or disabled key. */
    ResponseCookie signIn(String apiKey, HttpServletRequest request) {
        ApiKey key = keys.authenticate(apiKey)
                .orElseThrow(() -> ApiProblem.unauthorized("The API key is not valid or is disabled."));
        byte[] secret = new byte[32];
        random.nextBytes(secret);
        String token = Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
        Instant now = clock.instant();
        repository.insert(sha256(token), key.id(), now, now.plus(properties.sessionTtl()));
        return cookie(token, properties.sessionTtl().toSeconds(), request);
    }

    /** Ends the session of this request, if any; answers the cookie that clears it. */
    ResponseCookie signOut(HttpServletRequest request) {
        token(request).ifPresent(token -> repository.delete(sha256(token)));
        return cookie("", 0, request);
    }

    /** The session of this request: a live cookie whose key still exists and is enabled. */
    Optional<BrowserSession> resolve(HttpServletRequest request) {
        return token(request).flatMap(token -> {
            String hash = sha256(token);
            return repository.findKeyId(hash, clock.instant())
                    .flatMap(keys::find)
                    .filter(ApiKey::enabled)
                    .map(key -> new BrowserSession(hash, key));
        });
    }

    @Scheduled(fixedDelayString = "PT1H", initialDelayString = "PT1M")
    void deleteExpired() {
        repository.deleteExpired(clock.instant());
    }

    private static Optional<String> token(HttpServletRequest request) {
        Cookie[] cookies = request.getCookies();
        if (cookies == null) {
            return Optional.empty();
        }
        for (Cookie cookie : cookies) {
            if (COOKIE.equals(cookie.getName()) && cookie.getValue() != null && !cookie.getValue().isBlank()) {
                return Optional.of(cookie.getValue());
            }
        }
        return Optional.empty();
    }

    private static ResponseCookie cookie(String value, long maxAgeSeconds, HttpServletRequest request) {
        // Secure only over HTTPS (directly or behind a TLS-terminating proxy): a Secure cookie
        // set over plain http://localhost would be dropped by some browsers.
        boolean https = request.isSecure() || "https".equalsIgnoreCase(request.getHeader("X-Forwarded-Proto"));
        return ResponseCookie.from(COOKIE, value)
                .httpOnly(true)
                .sameSite("Strict")
                .secure(https)
                .path("/api")
                .maxAge(maxAgeSeconds)
                .build();
    }

    static String sha256(String value) {
        try {
            return HexFormat.of().formatHex(
                    MessageDigest.getInstance("SHA-256").digest(value.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JRE", e);
        }
    }
}
