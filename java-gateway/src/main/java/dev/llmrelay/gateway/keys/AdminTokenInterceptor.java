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
 * Guards {@code /admin/**} with {@code Authorization: Bearer <GATEWAY_ADMIN_TOKEN>}. Without a configured
 * token the admin API does not exist (404), so an unset secret never means "open".
 */
class AdminTokenInterceptor implements HandlerInterceptor {

    private final byte[] adminToken;

    AdminTokenInterceptor(GatewayProperties properties) {
        String token = properties.adminToken();
        this.adminToken = token == null || token.isBlank() ? null : token.strip().getBytes(StandardCharsets.UTF_8);
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
        if (presented == null) {
            throw problem(HttpStatus.UNAUTHORIZED, "Missing admin token",
                    "Send Authorization: Bearer <admin token>.");
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
