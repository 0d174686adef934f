package dev.llmrelay.gateway.keys;

import jakarta.servlet.http.HttpServletRequest;

/** Reads {@code Authorization: Bearer <token>}. */
public final class BearerToken {

    private BearerToken() {
    }

    /** The bearer token, or null when the header is missing or not a bearer credential. */
    public static String from(HttpServletRequest request) {
        String header = request.getHeader("Authorization");
        if (header == null || header.length() < 7 || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        String token = header.substring(7).strip();
        return token.isEmpty() ? null : token;
    }
}
