package dev.llmrelay.gateway.keys;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.util.Base64;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import jakarta.servlet.http.Cookie;
import jakarta.servlet.http.HttpServletRequest;

import org.springframework.http.ResponseCookie;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;

/**
 * The console's sign-in: a cookie that stands for the admin token for a while. Stateless, so every gateway
 * instance accepts it: its value is an expiry and an HMAC-SHA256 of it keyed by the admin token, so changing
 * the token signs every console out, and nothing is stored. HttpOnly (no script reads it), SameSite=Strict
 * (no other site's page sends it), Secure when the request came over HTTPS.
 */
@Component
public class AdminSessions {

    public static final String COOKIE = "relay_admin";
    static final Duration LIFETIME = Duration.ofHours(8);

    private final byte[] adminToken;
    private final Clock clock = Clock.systemUTC();

    AdminSessions(GatewayProperties properties) {
        String token = properties.adminToken();
        this.adminToken = token == null || token.isBlank() ? null : token.strip().getBytes(StandardCharsets.UTF_8);
    }

    /** Whether {@code presented} is the admin token (constant-time). */
    boolean isAdminToken(String presented) {
        return adminToken != null && presented != null
                && MessageDigest.isEqual(adminToken, presented.getBytes(StandardCharsets.UTF_8));
    }

    ResponseCookie issue(HttpServletRequest request) {
        long expires = clock.millis() + LIFETIME.toMillis();
        String value = expires + "." + sign(expires);
        return ResponseCookie.from(COOKIE, value).httpOnly(true).sameSite("Strict").path("/")
                .secure(request.isSecure()).maxAge(LIFETIME).build();
    }

    ResponseCookie cleared(HttpServletRequest request) {
        return ResponseCookie.from(COOKIE, "").httpOnly(true).sameSite("Strict").path("/").secure(request.isSecure())
                .maxAge(0).build();
    }

    /** Whether the request carries a console cookie that is unexpired and signed with the current token. */
    boolean signedIn(HttpServletRequest request) {
        if (adminToken == null || request.getCookies() == null) {
            return false;
        }
        for (Cookie cookie : request.getCookies()) {
            if (COOKIE.equals(cookie.getName()) && valid(cookie.getValue())) {
                return true;
            }
        }
        return false;
    }

    private boolean valid(String value) {
        int dot = value == null ? -1 : value.indexOf('.');
        if (dot <= 0) {
            return false;
        }
        long expires;
        try {
            expires = Long.parseLong(value.substring(0, dot));
        } catch (NumberFormatException e) {
            return false;
        }
        return expires > clock.millis() && MessageDigest.isEqual(sign(expires).getBytes(StandardCharsets.US_ASCII),
                value.substring(dot + 1).getBytes(StandardCharsets.US_ASCII));
    }

    private String sign(long expires) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(adminToken, "HmacSHA256"));
            byte[] digest = mac.doFinal(("relay-console:" + expires).getBytes(StandardCharsets.US_ASCII));
            return Base64.getUrlEncoder().withoutPadding().encodeToString(digest);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is part of every JRE", e);
        }
    }
}
