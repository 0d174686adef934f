package dev.llmrelay.gateway.keys;

import java.util.Set;

import jakarta.servlet.http.HttpServletRequest;

import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.web.ErrorResponseException;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import com.fasterxml.jackson.databind.JsonNode;

import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.tags.Tag;

import dev.llmrelay.gateway.system.ApiProblem;

/**
 * The console's sign-in with the admin token: a session cookie ({@link AdminSessions}) that the admin API
 * then accepts in place of {@code Authorization: Bearer}. Signing in is the one admin route without the token.
 */
@Tag(name = "Admin: console session")
@RestController
@RequestMapping("/admin/session")
class AdminSessionController {

    private final AdminSessions sessions;

    AdminSessionController(AdminSessions sessions) {
        this.sessions = sessions;
    }

    @Schema(additionalProperties = Schema.AdditionalPropertiesValue.FALSE)
    record SignIn(@Schema(requiredMode = Schema.RequiredMode.REQUIRED) String token) {
    }

    @ApiResponse(responseCode = "204", description = "Signed in: Set-Cookie relay_admin (HttpOnly, SameSite=Strict)")
    @io.swagger.v3.oas.annotations.parameters.RequestBody(content = @io.swagger.v3.oas.annotations.media.Content(
            mediaType = "application/json", schema = @Schema(implementation = SignIn.class)))
    @PostMapping
    ResponseEntity<Void> signIn(@RequestBody(required = false) JsonNode body, HttpServletRequest request) {
        if (body == null || !body.isObject()) {
            throw ApiProblem.badRequest("A JSON body {\"token\"} is required.");
        }
        ApiProblem.requireKnownMembers(body, Set.of("token"));
        JsonNode token = body.get("token");
        if (!sessions.isAdminToken(token != null && token.isTextual() ? token.asText().strip() : null)) {
            ProblemDetail problem = ProblemDetail.forStatusAndDetail(HttpStatus.UNAUTHORIZED, "The admin token is not valid.");
            problem.setTitle("Wrong admin token");
            throw new ErrorResponseException(HttpStatus.UNAUTHORIZED, problem, null);
        }
        return ResponseEntity.noContent().header(HttpHeaders.SET_COOKIE, sessions.issue(request).toString()).build();
    }

    /** 204 when signed in (the interceptor answers 401 otherwise). */
    @ApiResponse(responseCode = "204", description = "Signed in")
    @GetMapping
    ResponseEntity<Void> check() {
        return ResponseEntity.noContent().build();
    }

    @ApiResponse(responseCode = "204", description = "Signed out: the cookie is cleared")
    @DeleteMapping
    ResponseEntity<Void> signOut(HttpServletRequest request) {
        return ResponseEntity.noContent().header(HttpHeaders.SET_COOKIE, sessions.cleared(request).toString()).build();
    }
}
