package dev.llmrelay.gateway.keys;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.web.ErrorResponseException;
import org.springframework.web.servlet.HandlerInterceptor;

import dev.llmrelay.gateway.system.GatewayProperties;

/**
 * Guards {@code /admin/**} with {@code Authorization: Bearer <GATEWAY_ADMIN_TOKEN>}, or the console's session
 * cookie ({@link AdminSessions}). A cookie-signed request that changes something must also send
 * {@code X-Relay-Console: 1}: another site cannot add that header without a CORS preflight this gateway never
 * grants, so a forged form or fetch is refused (403) even if a browser did send the cookie. Without a
 * configured token the admin API does not exist (404), so an unset secret never means "open".
 */
class AdminTokenInterceptor implements HandlerInterceptor {

    static final String CONSOLE_HEADER = "X-Relay-Console";

    private final byte[] adminToken;
    private final AdminSessions sessions;

    AdminTokenInterceptor(GatewayProperties properties, AdminSessions sessions) {
        String token = properties.adminToken();
        this.adminToken = token == null || token.isBlank() ? null : token.strip().getBytes(StandardCharsets.UTF_8);
        this.sessions = sessions;
    }

    @Override
    public boolean preHandle(HttpServletRequest request, HttpServletResponse response, Object handler) {
        if ("OPTIONS".equals(request.getMethod())) {
            return true;
        }
        if (adminToken == null) {
            throw problem(HttpStatus.NOT_FOUND, "Admin API disabled", "Set GATEWAY_ADMIN_TOKEN to enable /admin.");
        }
        String presented = BearerToken.from(request);
        if (presented == null && "/admin/session".equals(request.getRequestURI()) && "POST".equals(request.getMethod())) {
            return true; // signing in: the body carries the token (AdminSessionController)
        }
        if (presented == null && sessions.signedIn(request)) {
            boolean reads = "GET".equals(request.getMethod()) || "HEAD".equals(request.getMethod());
            if (!reads && !"1".equals(request.getHeader(CONSOLE_HEADER))) {
                throw problem(HttpStatus.FORBIDDEN, "Console header missing",
                        "A change made with the console's session must send " + CONSOLE_HEADER + ": 1.");
            }
            return true;
        }
        if (presented == null) {
            throw problem(HttpStatus.UNAUTHORIZED, "Missing admin token",
                    "Send Authorization: Bearer <admin token>, or sign in with POST /admin/session.");
        }
        // constant-time: do not leak how much of the token matched
        if (!MessageDigest.isEqual(adminToken, presented.getBytes(StandardCharsets.UTF_8))) {
            throw problem(HttpStatus.UNAUTHORIZED, "Wrong admin token", "The admin token is not valid.");
        }
        return true;
    }

    private static ErrorResponseException problem(HttpStatus status, String title, String detail) {
        ProblemDetail body = ProblemDetail.forStatusAndDetail(status, detail);
        body.setTitle(title);
        body.setType(URI.create("about:blank"));
        return new ErrorResponseException(status, body, null);
    }
}
